"""Radiomics LR/SVM/ridge baselines with nested CV on the small phantom cohort."""

from __future__ import annotations

import csv
import json
import math

import pytest

from BreastSubtypeLib.tasks import RECEPTORS
from BreastSubtypeTraining.baseline import run_radiomics_baseline
from BreastSubtypeTraining.splits import cross_validation_folds

pytest.importorskip("radiomics")  # an optional dependency of the training package

FAST_C_GRID = (0.01, 1.0, 100.0)  # a coarser inner grid keeps the test quick; nesting is the same


@pytest.fixture(scope="module")
def baseline(phantom_rows, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("baseline")
    folds = cross_validation_folds(phantom_rows, k=3, seed=0)
    stages = []
    results = run_radiomics_baseline(
        phantom_rows, folds, out_dir, lambda f, s: stages.append((f, s)), n_boot=200, c_grid=FAST_C_GRID
    )
    return results, out_dir, folds, stages


def test_every_task_gets_an_auc_in_0_1_and_ki67_an_mae(baseline, phantom_rows):
    results, _, _, _ = baseline
    for kind in ("lr", "svm"):
        for task in RECEPTORS:
            metrics = results["models"][kind][task]
            known = sum(getattr(r, task) is not None for r in phantom_rows)
            assert 0.0 <= metrics["auc"] <= 1.0 and metrics["n"] == known, (kind, task, metrics)
            assert metrics["ci_low"] <= metrics["auc"] <= metrics["ci_high"]
        assert 0.0 <= results["summary"][kind]["mean_auc"] <= 1.0
    ridge = results["models"]["ridge"]["ki67_percent"]
    assert ridge["n"] == len(phantom_rows) and 0.0 <= ridge["mae"] < 100.0


def test_features_differ_between_core_rim_and_peritumoral(baseline, phantom_rows):
    _, out_dir, _, _ = baseline
    for path in sorted((out_dir / "radiomics_features").glob("*.json")):
        features = json.loads(path.read_text(encoding="utf-8"))
        means = [features[f"{region}_original_firstorder_Mean"] for region in ("core", "rim", "peritumoral")]
        volumes = [
            features[f"{region}_original_shape_VoxelVolume"] for region in ("core", "rim", "peritumoral")
        ]
        assert len(set(means)) == 3 and len(set(volumes)) == 3
        assert {name.split("_original_")[1].split("_")[0] for name in features} == {
            "firstorder",
            "shape",
            "glcm",
        }
    assert len(list((out_dir / "radiomics_features").glob("*.json"))) == len(phantom_rows)


def test_out_of_fold_scores_come_from_the_given_folds_only(baseline, phantom_rows):
    _, out_dir, folds, _ = baseline
    with open(out_dir / "baseline_predictions.csv", encoding="utf-8") as handle:
        predicted = list(csv.DictReader(handle))
    er_cases = sorted(p["case_id"] for p in predicted if p["model"] == "lr" and p["task"] == "er")
    assert er_cases == sorted(c for fold in folds for c in fold.test)  # every case scored once, out of fold


def test_tables_are_written_and_a_rerun_reuses_the_feature_cache(baseline, phantom_rows):
    results, out_dir, folds, stages = baseline
    rows = list(csv.DictReader(open(out_dir / "baseline.csv", encoding="utf-8")))
    assert [(r["model"], r["task"]) for r in rows[:6]] == [(k, t) for k in ("lr", "svm") for t in RECEPTORS]
    assert float(rows[0]["value"]) == pytest.approx(results["models"]["lr"]["er"]["auc"], abs=1e-4)
    table = (out_dir / "baseline.md").read_text(encoding="utf-8")
    assert "| Radiomics logistic regression |" in table and "| Radiomics SVM (RBF) |" in table
    assert stages[-1][0] == 1.0 and all(0.0 <= f <= 1.0 for f, _ in stages)
    cached = {p: p.stat().st_mtime_ns for p in (out_dir / "radiomics_features").glob("*.json")}
    again = run_radiomics_baseline(phantom_rows, folds, out_dir, n_boot=200, c_grid=FAST_C_GRID)
    assert {p: p.stat().st_mtime_ns for p in (out_dir / "radiomics_features").glob("*.json")} == cached
    assert again["models"]["lr"]["er"]["auc"] == results["models"]["lr"]["er"]["auc"]
    assert not math.isnan(again["summary"]["svm"]["mean_auc"])
