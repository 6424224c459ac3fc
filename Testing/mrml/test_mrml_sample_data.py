"""The shipped demo phantom (Sample Data) and the segment terminology, read with the real MRML
library the way Slicer reads them."""

from __future__ import annotations

import json
import struct
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from BreastSubtypeLib.model.registry import sha256_of
from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM, ROI_COLORS_RGB
from BreastSubtypeModuleLib import sampledata, terminology
from BreastSubtypeMRML import io, segments, volumes

FOLDER = sampledata.sample_folder()


@pytest.mark.parametrize("sample", sampledata.FILES, ids=lambda f: f.file_name)
def test_shipped_files_match_their_registered_sha256(sample):
    assert sha256_of(FOLDER / sample.file_name) == sample.sha256


def test_shipped_files_are_small():
    total = sum((FOLDER / f.file_name).stat().st_size for f in sampledata.FILES)
    assert total < 3_000_000


def test_registration_points_at_the_shipped_files_with_checksums(tmp_path):
    """What SampleDataLogic.downloadFile does offline: urlretrieve of the file: URI into the cache,
    then computeChecksum("SHA256", ...) against the registered digest."""
    arguments = sampledata.source_arguments()
    assert arguments["category"] == "BreastSubtype"
    assert arguments["sampleName"] == sampledata.SAMPLE_NAME
    assert arguments["loadFileTypes"] == ["VolumeFile", "SegmentationFile"]
    assert Path(arguments["thumbnailFileName"]).is_file()
    lengths = {
        len(arguments[key]) for key in ("uris", "fileNames", "nodeNames", "loadFileTypes", "checksums")
    }
    assert lengths == {2}
    for uri, name, checksum in zip(arguments["uris"], arguments["fileNames"], arguments["checksums"]):
        cached = tmp_path / name
        urllib.request.urlretrieve(uri, cached)
        algorithm, digest = checksum.split(":")
        assert algorithm == "SHA256" and sha256_of(cached) == digest


def test_thumbnail_is_a_png_picture():
    data = (FOLDER / sampledata.THUMBNAIL).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (128, 128)


def test_phantom_loads_as_a_volume_and_a_tumour_segment(mrml):
    volume = io.load_volume(mrml.scene, FOLDER / "BreastSubtypePhantom.nrrd", "BreastSubtype phantom")
    assert volumes.array_from_volume_node(volume).shape == (48, 128, 128)
    assert volume.GetSpacing() == pytest.approx((0.7, 0.7, 1.5))
    tumour = io.load_segmentation(mrml.scene, FOLDER / "BreastSubtypePhantom-tumour.seg.nrrd")
    segment = tumour.GetSegmentation().GetSegment(segments.TUMOUR_SEGMENT_ID)
    assert segment is not None
    mask = segments.tumour_mask_from_segment(mrml.scene, tumour, segments.TUMOUR_SEGMENT_ID, volume)
    voxels = int(np.count_nonzero(sitk.GetArrayViewFromImage(mask)))
    assert voxels * 0.7 * 0.7 * 1.5 / 1000.0 > 0.5  # a lesion of more than half a millilitre


def _terminology_logic():
    logic = slicer.vtkSlicerTerminologiesModuleLogic()
    assert terminology.load_into(logic) == segments.TERMINOLOGY_CONTEXT
    return logic


def test_terminology_file_defines_the_segments_codes_and_colours():
    doc = json.loads(terminology.terminology_file().read_text(encoding="utf-8"))
    assert doc["SegmentationCategoryTypeContextName"] == segments.TERMINOLOGY_CONTEXT
    (category,) = doc["SegmentationCodes"]["Category"]
    (neoplasm,) = category["Type"]
    assert (category["CodingSchemeDesignator"], category["CodeValue"]) == ("SCT", "49755003")
    assert (neoplasm["CodingSchemeDesignator"], neoplasm["CodeValue"]) == ("SCT", "108369006")
    colours = {m["CodeValue"]: m["recommendedDisplayRGBValue"] for m in neoplasm["Modifier"]}
    expected = {"CORE": CORE, "RIM": RIM, "PERI": PERITUMORAL}
    assert colours == {
        code: [round(v * 255) for v in ROI_COLORS_RGB[label]] for code, label in expected.items()
    }
    assert neoplasm["recommendedDisplayRGBValue"] == [round(v * 255) for v in segments.TUMOUR_COLOR_RGB]


def test_segment_terminology_resolves_in_the_loaded_context(mrml):
    """Each ROI segment's entry is found in the context loaded at startup (no unknown codes)."""
    logic = _terminology_logic()
    for modifier in (None, *segments._ROI_MODIFIERS.values()):
        entry = slicer.vtkSlicerTerminologyEntry()
        assert slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(
            segments.terminology_string(modifier), entry
        )
        assert entry.GetTerminologyContextName() == segments.TERMINOLOGY_CONTEXT
        found = entry.GetTypeModifierObject() if modifier else entry.GetTypeObject()
        assert found.GetRecommendedDisplayRGBValue() == (127, 127, 127)  # unknown until looked up
        assert logic.UpdateEntryFromLoadedTerminologies(entry, [segments.TERMINOLOGY_CONTEXT], [])
        label = {code[1]: label for label, code in segments._ROI_MODIFIERS.items()}.get(
            modifier and modifier[1]
        )
        colour = ROI_COLORS_RGB[label] if modifier else segments.TUMOUR_COLOR_RGB
        assert found.GetRecommendedDisplayRGBValue() == tuple(round(v * 255) for v in colour)
    by_label = slicer.vtkSlicerTerminologyEntry()
    assert logic.FindTypeInTerminologyBy3dSlicerLabel(
        segments.TERMINOLOGY_CONTEXT, "peritumoral region", by_label
    )
    assert by_label.GetTypeModifierObject().GetCodeValue() == "PERI"
