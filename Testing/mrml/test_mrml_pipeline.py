"""The module's steps on scene nodes: ROIs from a tumour segment, inputs for the background CLI."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from BreastSubtypeLib.phantom import generate_phantom
from BreastSubtypeLib.rois.labels import CORE, RIM
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


def test_exported_inputs_keep_geometry_and_tumour(mrml, phantom, tmp_path):
    volume, tumour, segment_id = _load(mrml, phantom)
    rois, _ = pipeline.generate_rois(mrml.scene, volume, tumour, segment_id, 3.0, 5.0)
    image_path, mask_path = pipeline.export_prediction_inputs(mrml.scene, volume, rois, tmp_path)
    image, mask = sitk.ReadImage(str(image_path)), sitk.ReadImage(str(mask_path))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(phantom.image))
    np.testing.assert_allclose(image.GetDirection(), OBLIQUE, atol=1e-12)
    np.testing.assert_allclose(mask.GetOrigin(), phantom.image.GetOrigin(), atol=1e-9)
    labels = sitk.GetArrayFromImage(compute_rois(phantom.image, phantom.tumour_mask, 3.0, 5.0).labelmap)
    np.testing.assert_array_equal(
        sitk.GetArrayFromImage(mask), ((labels == CORE) | (labels == RIM)).astype(np.uint8)
    )


def test_prediction_command_runs_the_cli_module_with_progress():
    command = pipeline.prediction_command(
        "i.nrrd", "m.nrrd", "out", model="demo", device="cpu", python="PythonSlicer"
    )
    assert command[:4] == ["PythonSlicer", "-m", "BreastSubtypeLib.cli.main", "predict"]
    assert command[command.index("--device") + 1] == "cpu"
    assert "--progress-json" in command
    assert pipeline.prediction_command("i", "m", "o")[0] == sys.executable
