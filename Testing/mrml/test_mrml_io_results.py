""".seg.nrrd save/reload through storage nodes; a case output folder imported into the scene."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM
from BreastSubtypeMRML import io, results, segments, tables, volumes


def _grid(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.75, 0.75, 1.2))
    image.SetOrigin((30.0, -12.0, 4.0))
    image.SetDirection((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return image


def _rois() -> sitk.Image:
    labels = np.zeros((10, 12, 14), np.uint8)
    labels[1:9, 1:11, 1:13] = PERITUMORAL
    labels[2:8, 3:9, 3:11] = RIM
    labels[4:6, 5:7, 5:9] = CORE
    return _grid(labels)


def _input(mrml):
    rng = np.random.default_rng(7)
    image = _grid(rng.integers(0, 4095, (10, 12, 14)).astype(np.int16))
    return volumes.volume_node_from_sitk(mrml.scene, image, "post-contrast")


def test_segmentation_file_round_trip(mrml, tmp_path):
    reference = _input(mrml)
    node = segments.add_roi_segmentation(mrml.scene, _rois(), reference, "ROIs")
    path = io.save_segmentation(node, tmp_path / "rois.seg.nrrd")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rois.seg.nrrd"]  # no temporary left
    loaded = io.load_segmentation(mrml.scene, path)
    segmentation = loaded.GetSegmentation()
    assert [segmentation.GetNthSegmentID(i) for i in range(3)] == ["core", "rim", "peritumoral"]
    assert "Tumour rim" in segmentation.GetSegment("rim").GetTerminology()
    back = segments.roi_labelmap_from_segmentation(mrml.scene, loaded, reference)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayFromImage(_rois()))


def test_volume_file_round_trip(mrml, tmp_path):
    node = _input(mrml)
    path = io.save_volume(node, tmp_path / "input.nrrd")
    loaded = io.load_volume(mrml.scene, path)
    np.testing.assert_array_equal(
        volumes.array_from_volume_node(loaded), volumes.array_from_volume_node(node)
    )
    assert loaded.GetOrigin() == node.GetOrigin()
    assert loaded.GetName() == "input"


def _write_outputs(folder, prediction):
    folder.mkdir()
    (folder / "prediction.json").write_text(json.dumps(prediction))
    sitk.WriteImage(_rois(), str(folder / "rois.nrrd"))
    ramp = np.linspace(0, 1, 10 * 12 * 14, dtype=np.float32).reshape(10, 12, 14)
    for name in ("attention", "attention_scale1", "attention_scale0", "gradcam_er", "gradcam_ki67"):
        sitk.WriteImage(_grid(ramp), str(folder / f"{name}.nrrd"))


def test_case_outputs_become_table_segments_and_heatmaps_under_the_study(mrml, tmp_path):
    volume = _input(mrml)
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml.scene)
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "P"), "MRI")
    sh.SetItemParent(sh.GetItemByDataNode(volume) or sh.CreateItem(study, volume), study)
    prediction = {
        "er": {"probability": 0.9, "positive": True, "threshold": 0.5},
        "ki67_percent": 12.0,
        "margin_profile": {"values": {"core_mean": 1.5}, "evidence": {"er": {"core_mean": 0.25}}},
    }
    _write_outputs(tmp_path / "case", prediction)

    case = results.import_case_outputs(mrml.scene, tmp_path / "case", volume, threshold_fraction=0.5)

    assert list(case.heatmap_nodes) == [
        "Attention (fused)", "Attention scale 0", "Attention scale 1", "Grad-CAM ER", "Grad-CAM Ki-67",
    ]  # fmt: skip
    assert tables.table_rows(case.table_node)[0] == ("ER probability", "0.900", "0.500", "positive")
    assert tables.table_rows(case.evidence_table_node) == [
        ("ER", "Core: mean signal intensity", "1.500", "+0.25")
    ]
    back = segments.roi_labelmap_from_segmentation(mrml.scene, case.roi_segmentation_node, volume)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayFromImage(_rois()))
    fused = case.heatmap_nodes["Attention (fused)"]
    assert fused.GetOrigin() == volume.GetOrigin()
    assert fused.GetDisplayNode().GetLowerThreshold() == pytest.approx(0.5)
    assert sh.GetItemParent(case.folder_item) == study
    for node in (
        case.table_node,
        case.evidence_table_node,
        case.roi_segmentation_node,
        *case.heatmap_nodes.values(),
    ):
        assert sh.GetItemParent(sh.GetItemByDataNode(node)) == case.folder_item


def test_missing_prediction_is_a_bad_input(mrml, tmp_path):
    with pytest.raises(BadInputError, match="prediction.json does not exist"):
        results.import_case_outputs(mrml.scene, tmp_path, _input(mrml))
