"""The Slicer module's whole path, outside Slicer: scene nodes -> exported inputs -> a real
``python -m BreastSubtypeLib.cli.main predict`` child process -> outputs imported back as nodes."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2] / "BreastSubtype"))
sys.path.insert(0, str(HERE.parents[1]))

if importlib.util.find_spec("BreastSubtypeLib.cli.predict_command") is None:
    pytest.skip("the predict command does not exist yet", allow_module_level=True)

from predict_helpers import random_model_package, small_case  # noqa: E402

from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL  # noqa: E402
from BreastSubtypeModuleLib.process import BackgroundProcess  # noqa: E402
from BreastSubtypeMRML import pipeline, results, segments, tables, volumes  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    """The shipped demo model when installed, else a randomly initialised package (same contract)."""
    from BreastSubtypeLib.model import registry

    try:
        registry.resolve("demo")
        return "demo"
    except Exception:
        return str(random_model_package(tmp_path_factory.mktemp("model") / "random"))


def test_prediction_runs_in_a_child_process_and_comes_back_as_nodes(mrml, tmp_path, model):
    case = small_case(seed=3, direction=(0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    volume = volumes.volume_node_from_sitk(mrml.scene, case.image, "post-contrast")
    tumour = segments.new_segmentation_node(mrml.scene, "tumour", volume)
    segment_id = segments.set_tumour_segment(mrml.scene, tumour, case.tumour_mask)
    rois, roi_result = pipeline.generate_rois(mrml.scene, volume, tumour, segment_id, 3.0, 5.0)
    # The radiologist erases the peritumoral band on one side (it crossed into a vessel, say).
    edited = sitk.GetArrayFromImage(roi_result.labelmap)
    centre_j = int(np.mean(np.nonzero(edited == CORE)[1]))
    side = edited[:, :centre_j]
    side[side == PERITUMORAL] = 0
    edited_image = sitk.GetImageFromArray(edited)
    edited_image.CopyInformation(case.image)
    segments.set_roi_segments(mrml.scene, rois, edited_image)

    inputs = pipeline.export_prediction_inputs(mrml.scene, volume, rois, tmp_path / "inputs")
    out_dir = tmp_path / "outputs"
    command = pipeline.prediction_command(inputs, out_dir, model=model, device="cpu", rim_mm=3.0, peri_mm=5.0)
    process = BackgroundProcess()
    process.start(command)
    updates, deadline = [], time.monotonic() + 240
    while process.running and time.monotonic() < deadline:
        updates += process.poll()
        time.sleep(0.05)
    assert process.wait(timeout=10) == 0, process.error_text
    updates += process.poll()
    assert updates and updates[-1].fraction == 1.0
    assert [u.fraction for u in updates] == sorted(u.fraction for u in updates)

    imported = results.import_case_outputs(mrml.scene, out_dir, volume)

    # The model ran on the edited segments: the ROIs that come back are the edit, voxel for voxel.
    back = segments.roi_labelmap_from_segmentation(mrml.scene, imported.roi_segmentation_node, volume)
    assert (edited != sitk.GetArrayFromImage(roi_result.labelmap)).any()
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), edited)
    voxel_ml = float(np.prod(case.image.GetSpacing())) / 1000.0
    assert imported.prediction["roi_volumes_ml"]["peritumoral"] == pytest.approx(
        float((edited == PERITUMORAL).sum()) * voxel_ml
    )
    rows = {row[0]: row for row in tables.table_rows(imported.table_node)}
    er = imported.prediction["er"]
    assert rows["ER probability"][1:] == (
        f"{er['probability']:.3f}",
        f"{er['threshold']:.3f}",
        "positive" if er["positive"] else "negative",
    )
    assert rows["Surrogate subtype"][1] == imported.prediction["subtype"]["name"]
    warnings = [row[1] for row in tables.table_rows(imported.table_node) if row[0] == "Warning"]
    assert warnings.count(tables.DEMONSTRATION_WARNING) == int(imported.prediction["model"]["demonstration"])
    assert len(warnings) == len(set(warnings))
    assert "Attention (fused)" in imported.heatmap_nodes
    for node in imported.heatmap_nodes.values():
        assert node.GetOrigin() == volume.GetOrigin()
        assert node.GetSpacing() == volume.GetSpacing()
        np.testing.assert_allclose(
            volumes.sitk_from_volume_node(node).GetDirection(), case.image.GetDirection(), atol=1e-9
        )
