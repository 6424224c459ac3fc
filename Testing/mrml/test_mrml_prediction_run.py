"""One background prediction as the module runs it (PredictionRun): a real child process, the run
finishing without any parameter node, its temporary folder removed on success, failure and cancel."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from predict_helpers import small_case  # noqa: E402

from BreastSubtypeLib.tasks import TASK_TITLES  # noqa: E402
from BreastSubtypeModuleLib.prediction import PredictionError, PredictionRun  # noqa: E402
from BreastSubtypeMRML import pipeline, segments, tables, volumes  # noqa: E402

pytestmark = pytest.mark.slow


def _case_nodes(scene):
    case = small_case(seed=3)
    volume = volumes.volume_node_from_sitk(scene, case.image, "post-contrast")
    tumour = segments.new_segmentation_node(scene, "tumour", volume)
    segment_id = segments.set_tumour_segment(scene, tumour, case.tumour_mask)
    rois, _ = pipeline.generate_rois(scene, volume, tumour, segment_id, 3.0, 5.0)
    return volume, rois


def _poll(run: PredictionRun, timeout_s: float = 240.0):
    updates, log, deadline = [], [], time.monotonic() + timeout_s
    while run.running and time.monotonic() < deadline:
        new_updates, new_log = run.poll()
        updates += new_updates
        log += new_log
        time.sleep(0.05)
    assert not run.running, "the prediction did not finish in time"
    return updates, log


def test_run_finishes_from_scene_node_ids_and_removes_its_folder(mrml, tmp_path):
    volume, rois = _case_nodes(mrml.scene)
    run = PredictionRun(work_root=tmp_path)
    run.start(mrml.scene, volume, rois, model="demo", device="cpu")
    work_dir = run.work_dir
    assert (work_dir / "inputs" / "image.nrrd").is_file()  # patient voxels, for the child only
    updates, _log = _poll(run)
    assert updates and updates[-1].fraction == 1.0
    # The panel was left meanwhile: nothing but the scene is needed to finish.
    finished = run.finish(mrml.scene, threshold_fraction=0.3)
    assert not work_dir.exists() and list(tmp_path.iterdir()) == []
    rows = {row[0]: row for row in tables.table_rows(finished.case.table_node)}
    assert rows["Surrogate subtype"][1] == finished.case.prediction["subtype"]["name"]
    # The collapsed "Margin profile evidence" panel's table: each call's three strongest numbers.
    evidence = finished.case.prediction["margin_profile"]["evidence"]
    shown = tables.table_rows(finished.case.evidence_table_node)
    assert [row[0] for row in shown] == [TASK_TITLES[task] for task in evidence for _ in range(3)]
    for task in evidence:
        pushes = [float(row[3]) for row in shown if row[0] == TASK_TITLES[task]]
        strongest = sorted(evidence[task].values(), key=abs, reverse=True)[:3]
        assert pushes == [round(v, 2) for v in strongest]
    assert finished.case.roi_segmentation_node is rois  # the reviewed segments, not a reloaded copy
    assert finished.report_html and finished.report_html.startswith(b"<!DOCTYPE html>")
    fused = finished.case.heatmap_nodes["Attention (fused)"].GetDisplayNode()
    low, high = fused.GetWindowLevelMin(), fused.GetWindowLevelMax()
    assert fused.GetLowerThreshold() == pytest.approx(low + 0.3 * (high - low))


def test_failed_run_reports_the_cli_line_and_removes_its_folder(mrml, tmp_path):
    volume, rois = _case_nodes(mrml.scene)
    run = PredictionRun(work_root=tmp_path)
    run.start(mrml.scene, volume, rois, model=str(tmp_path / "no-such-model"), device="cpu")
    _poll(run)
    with pytest.raises(PredictionError, match="no-such-model"):
        run.finish(mrml.scene)
    assert list(tmp_path.iterdir()) == []


def test_removed_input_is_a_clear_error_not_a_crash(mrml, tmp_path):
    volume, rois = _case_nodes(mrml.scene)
    run = PredictionRun(work_root=tmp_path)
    run.start(mrml.scene, volume, rois, model="demo", device="cpu")
    mrml.scene.RemoveNode(volume)
    _poll(run)
    with pytest.raises(PredictionError, match="input volume was removed"):
        run.finish(mrml.scene)
    assert list(tmp_path.iterdir()) == []


def test_cancel_stops_the_child_and_removes_its_folder(mrml, tmp_path):
    volume, rois = _case_nodes(mrml.scene)
    run = PredictionRun(work_root=tmp_path)
    run.start(mrml.scene, volume, rois, model="demo", device="cpu")
    run.cancel()
    assert not run.running and run.finish(mrml.scene) is None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="generate the ROIs"):
        run.start(mrml.scene, volume, None, model="demo", device="cpu")
