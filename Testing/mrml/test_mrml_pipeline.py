"""The module's steps on scene nodes: ROIs from a tumour segment, inputs for the background CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from BreastSubtypeLib.phantom import generate_phantom
from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL
from BreastSubtypeLib.rois.regions import compute_rois
from BreastSubtypeMRML import pipeline, segments, volumes

OBLIQUE = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)


@pytest.fixture(scope="module")
def phantom():
    return generate_phantom(11, size_ijk=(64, 64, 24), spacing_mm=(0.8, 0.8, 1.6), direction=OBLIQUE)


def _load(mrml, phantom):
    volume = volumes.volume_node_from_sitk(mrml.scene, phantom.image, "post-contrast")
    tumour = segments.new_segmentation_node(mrml.scene, "tumour", volume)
    segment_id = segments.set_tumour_segment(mrml.scene, tumour, phantom.tumour_mask)
    return volume, tumour, segment_id


def test_generated_roi_segments_equal_the_library_rois(mrml, phantom):
    volume, tumour, segment_id = _load(mrml, phantom)
    node, result = pipeline.generate_rois(mrml.scene, volume, tumour, segment_id, rim_mm=2.0, peri_mm=4.0)
    expected = compute_rois(phantom.image, phantom.tumour_mask, 2.0, 4.0).labelmap
    back = segments.roi_labelmap_from_segmentation(mrml.scene, node, volume)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(expected))
    assert node.GetAttribute("BreastSubtype.peri_mm") == "4"
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml.scene)
    assert sh.GetItemName(sh.GetItemParent(sh.GetItemByDataNode(node))) == "BreastSubtype post-contrast"


def test_regenerating_reuses_the_roi_node(mrml, phantom):
    volume, tumour, segment_id = _load(mrml, phantom)
    node, _ = pipeline.generate_rois(mrml.scene, volume, tumour, segment_id, 3.0, 5.0)
    again, _ = pipeline.generate_rois(
        mrml.scene, volume, tumour, segment_id, 1.0, 5.0, roi_segmentation_node=node
    )
    assert again is node
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 2


def _erase_band_on_one_side(labelmap: sitk.Image) -> sitk.Image:
    """The radiologist's edit: no peritumoral band on the low-i side of the core's centre."""
    labels = sitk.GetArrayFromImage(labelmap)
    centre_i = int(np.mean(np.nonzero(labels == CORE)[2]))
    side = labels[:, :, :centre_i]
    side[side == PERITUMORAL] = 0
    edited = sitk.GetImageFromArray(labels)
    edited.CopyInformation(labelmap)
    return edited


def test_exported_inputs_are_the_edited_roi_segments_on_the_input_geometry(mrml, phantom, tmp_path):
    volume, tumour, segment_id = _load(mrml, phantom)
    rois, result = pipeline.generate_rois(mrml.scene, volume, tumour, segment_id, 3.0, 5.0)
    edited = _erase_band_on_one_side(result.labelmap)
    segments.set_roi_segments(mrml.scene, rois, edited)
    inputs = pipeline.export_prediction_inputs(mrml.scene, volume, rois, tmp_path)
    assert inputs.mask is None and inputs.rois == tmp_path / "rois.nrrd"
    image, labels = sitk.ReadImage(str(inputs.image)), sitk.ReadImage(str(inputs.rois))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(phantom.image))
    np.testing.assert_allclose(image.GetDirection(), OBLIQUE, atol=1e-12)
    np.testing.assert_allclose(labels.GetOrigin(), phantom.image.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(labels.GetDirection(), OBLIQUE, atol=1e-12)
    expected = sitk.GetArrayFromImage(edited)
    assert (expected == PERITUMORAL).sum() < (sitk.GetArrayFromImage(result.labelmap) == PERITUMORAL).sum()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(labels), expected)


def test_a_bare_tumour_segment_is_exported_as_a_mask(mrml, phantom, tmp_path):
    volume, tumour, _ = _load(mrml, phantom)
    inputs = pipeline.export_prediction_inputs(mrml.scene, volume, tumour, tmp_path)
    assert inputs.rois is None
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(inputs.mask)))
    np.testing.assert_array_equal(mask, sitk.GetArrayFromImage(phantom.tumour_mask) > 0)


def test_prediction_command_passes_rois_without_widths_and_a_mask_with_them():
    rois = pipeline.PredictionInputs(Path("i.nrrd"), rois=Path("r.nrrd"))
    command = pipeline.prediction_command(
        rois, "out", model="demo", device="cpu", rim_mm=2.0, peri_mm=4.0, python="PythonSlicer"
    )
    assert command[:4] == ["PythonSlicer", "-m", "BreastSubtypeLib.cli.main", "predict"]
    assert command[command.index("--rois") + 1] == "r.nrrd" and "--mask" not in command
    assert "--rim-mm" not in command and "--peri-mm" not in command
    assert command[command.index("--device") + 1] == "cpu"
    assert "--progress-json" in command
    mask = pipeline.PredictionInputs(Path("i.nrrd"), mask=Path("m.nrrd"))
    command = pipeline.prediction_command(mask, "out", rim_mm=2.0, peri_mm=4.0)
    assert command[0] == sys.executable and command[command.index("--mask") + 1] == "m.nrrd"
    assert command[command.index("--rim-mm") + 1] == "2" and command[command.index("--peri-mm") + 1] == "4"
