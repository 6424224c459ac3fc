"""THE case pipeline (read → validate → align → ROIs → lesion checks → model input) that predict and
training share: each step refuses what it must, with the file's name, and the steps compose."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.model.config import PreprocessingConfig
from BreastSubtypeLib.preprocessing.case import CaseInput, check_case, prepare_case, read_case
from BreastSubtypeLib.preprocessing.crop import prepare_model_input
from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM
from BreastSubtypeLib.rois.regions import compute_rois

CONFIG = PreprocessingConfig(crop_size_voxels=(48, 48, 48), target_spacing_mm=0.8, rim_mm=2.0, peri_mm=3.0)


@pytest.fixture
def case(synth):
    return synth.ellipsoid_case(size=(64, 64, 32), spacing=(0.7, 0.7, 1.5), radii_mm=(7.0, 6.0, 8.0))


def test_prepared_case_is_the_rois_at_the_configured_widths_and_their_crop(case):
    image, mask = case
    prepared = prepare_case(CaseInput(image, mask), CONFIG)
    expected = compute_rois(image, mask, rim_mm=2.0, peri_mm=3.0)
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(prepared.roi.labelmap), sitk.GetArrayViewFromImage(expected.labelmap)
    )
    np.testing.assert_array_equal(
        prepared.model_input.array, prepare_model_input(image, expected.labelmap, CONFIG).array
    )
    assert prepared.image is image and prepared.roi.rim_mm_used == 2.0


def test_widths_given_with_the_case_override_the_configs(case):
    image, mask = case
    narrow = prepare_case(CaseInput(image, mask), CONFIG)
    wide = prepare_case(CaseInput(image, mask, peri_mm=6.0), CONFIG)
    assert wide.roi.volumes_ml["peritumoral"] > narrow.roi.volumes_ml["peritumoral"]
    assert wide.roi.volumes_ml["tumour"] == narrow.roi.volumes_ml["tumour"]


def test_reviewed_regions_are_used_as_given(case):
    image, mask = case
    computed = compute_rois(image, mask, rim_mm=2.0, peri_mm=3.0)
    labels = sitk.GetArrayFromImage(computed.labelmap)
    labels[: labels.shape[0] // 2][labels[: labels.shape[0] // 2] == PERITUMORAL] = 0
    edited = sitk.GetImageFromArray(labels)
    edited.CopyInformation(image)
    prepared = prepare_case(CaseInput(image, rois=edited), CONFIG)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(prepared.roi.labelmap), labels)
    assert (
        prepared.model_input.array[3].sum()
        < prepare_case(CaseInput(image, mask), CONFIG).model_input.array[3].sum()
    )


def test_a_mask_on_another_grid_is_aligned_to_the_image(case):
    image, mask = case
    size = mask.GetSize()
    cropped = sitk.RegionOfInterest(mask, (size[0] - 8, size[1] - 8, size[2] - 4), (4, 4, 2))
    checked = check_case(CaseInput(image, cropped, mask_source="cropped.nrrd"))
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(checked.tumour_mask), sitk.GetArrayViewFromImage(mask)
    )


@pytest.mark.parametrize(
    "given, message",
    [
        ({"tumour_mask": None}, "either a tumour mask or"),
        ({"rois": "labels"}, "either a tumour mask or"),
        ({"tumour_mask": None, "rois": "labels", "rim_mm": 2.0}, "widths apply only"),
    ],
    ids=["neither", "both", "widths-with-regions"],
)
def test_what_the_case_is_made_of_is_checked_first(case, given, message):
    image, mask = case
    labels = compute_rois(image, mask).labelmap
    values = {"tumour_mask": mask, **given}
    values = {key: labels if value == "labels" else value for key, value in values.items()}
    with pytest.raises(BadInputError, match=message):
        check_case(CaseInput(image, **values))


def test_a_constant_image_is_refused_before_anything_else_naming_it(case):
    image, mask = case
    flat = sitk.Image(image.GetSize(), sitk.sitkInt16) + 300
    flat.CopyInformation(image)
    with pytest.raises(BadInputError, match=r"flat\.nrrd is constant"):
        prepare_case(CaseInput(flat, mask, image_source="flat.nrrd"), CONFIG)


def test_a_lesion_of_a_few_voxels_is_refused_naming_the_mask(synth):
    image, mask = synth.ellipsoid_case(size=(48, 48, 24), radii_mm=(1.0, 1.0, 1.0))
    with pytest.raises(BadInputError, match=r"tiny\.nrrd is only .* too small"):
        prepare_case(CaseInput(image, mask, mask_source="tiny.nrrd"), CONFIG)


def test_read_case_keeps_geometry_and_names_the_files(case, tmp_path):
    image, mask = case
    sitk.WriteImage(image, str(tmp_path / "image.nrrd"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nrrd"))
    read = read_case(tmp_path / "image.nrrd", tmp_path / "mask.nrrd", peri_mm=4.0)
    assert read.image.GetDirection() == image.GetDirection() and read.image.GetOrigin() == image.GetOrigin()
    assert read.rois is None and read.peri_mm == 4.0
    assert (read.image_source, read.mask_source) == (
        str(tmp_path / "image.nrrd"),
        str(tmp_path / "mask.nrrd"),
    )
    assert set(np.unique(sitk.GetArrayViewFromImage(prepare_case(read, CONFIG).roi.labelmap))) == {
        0, CORE, RIM, PERITUMORAL,
    }  # fmt: skip
