"""Patient-level stratified k-fold cross-validation (SPEC §8; the paper's external set used 5-fold).

Each fold is a full ``fit`` (train, early stopping on its own validation hold-out, thresholds on
it, figures on the fold's test patients) in ``DIR/fold_{i}``. The summary gives per-fold figures,
their mean ± SD, and the AUC of the pooled out-of-fold predictions with a bootstrap CI.
Finished folds (a ``metrics.json`` present) are not retrained, so an interrupted CV resumes.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.json_data import write_json
from BreastSubtypeLib.tasks import RECEPTORS
from BreastSubtypeTraining import metrics
from BreastSubtypeTraining.splits import cross_validation_folds
from BreastSubtypeTraining.train import fit


def read_predictions_csv(path: str | Path) -> dict:
    """Back from ``predictions_{split}.csv`` into the arrays ``compute_metrics`` takes."""
    with Path(path).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))

    def number(text):
        return float(text) if text not in ("", None) else math.nan

    columns = ("er", "p_er", "pr", "p_pr", "her2", "p_her2", "ki67_percent", "ki67_predicted")
    result = {"case_id": [row["case_id"] for row in rows]}
    result.update({column: np.array([number(row[column]) for row in rows]) for column in columns})
    return result


def summarise_folds(fold_metrics: Sequence[dict], pooled: dict, *, n_boot: int, seed: int) -> dict:
    summary: dict = {"folds": len(fold_metrics), "per_fold": []}
    for index, result in enumerate(fold_metrics):
        test = result.get("test", {})
        entry = {"fold": index, "mean_auc": test.get("mean_auc")}
        entry.update({f"auc_{task}": test.get(task, {}).get("auc") for task in RECEPTORS})
        entry["ki67_mae"] = test.get("ki67_percent", {}).get("mae")
        summary["per_fold"].append(entry)
    for key in ("mean_auc", *(f"auc_{t}" for t in RECEPTORS), "ki67_mae"):
        values = [e[key] for e in summary["per_fold"] if e[key] is not None and not math.isnan(e[key])]
        summary[key] = {
            "mean": float(np.mean(values)) if values else math.nan,
            "sd": float(np.std(values, ddof=1)) if len(values) > 1 else math.nan,
        }
    summary["pooled"] = {
        task: metrics.bootstrap_auc(pooled[task], pooled[f"p_{task}"], n_boot=n_boot, seed=seed)
        for task in RECEPTORS
    }
    summary["pooled"]["ki67_percent"] = metrics.regression_metrics(
        pooled["ki67_percent"], pooled["ki67_predicted"]
    )
    return summary


def run_cv(
    rows: Sequence,
    out_dir: str | Path,
    config,
    *,
    k: int = 5,
    device: str = "auto",
    truth_csv: str | Path | None = None,
    progress=None,
) -> dict:
    """Train and evaluate one model per fold; writes ``DIR/cv_summary.json`` and ``DIR/cv.md``."""
    out_dir = Path(out_dir)
    folds = cross_validation_folds(list(rows), k=k, seed=config.seed)
    # One crop cache for all folds: every case is preprocessed once.
    config = dataclasses.replace(config, cache_dir=config.cache_dir or str(out_dir / "cache"))
    fold_metrics, pooled_parts = [], []
    for fold in folds:
        fold_dir = out_dir / f"fold_{fold.index}"
        split_of = {
            **dict.fromkeys(fold.train, "train"),
            **dict.fromkeys(fold.val, "val"),
            **dict.fromkeys(fold.test, "test"),
        }
        fold_rows = [dataclasses.replace(row, split=split_of[row.case_id]) for row in rows]
        if not (fold_dir / "metrics.json").is_file():
            fit(fold_rows, fold_dir, config, device=device, resume=True, truth_csv=truth_csv)
        fold_metrics.append(json.loads((fold_dir / "metrics.json").read_text(encoding="utf-8")))
        pooled_parts.append(read_predictions_csv(fold_dir / "predictions_test.csv"))
        if progress is not None:
            progress((fold.index + 1) / len(folds), f"fold {fold.index + 1}/{len(folds)}")
    pooled = {
        key: (
            sum((p[key] for p in pooled_parts), [])
            if key == "case_id"
            else np.concatenate([p[key] for p in pooled_parts])
        )
        for key in pooled_parts[0]
    }
    summary = summarise_folds(fold_metrics, pooled, n_boot=config.bootstrap_samples, seed=config.seed)
    write_json(out_dir / "cv_summary.json", summary)
    write_text_atomic(out_dir / "cv.md", cv_markdown(summary))
    return summary


def cv_markdown(summary: dict) -> str:
    def cell(stat):
        return (
            "n/a"
            if stat["mean"] is None or math.isnan(stat["mean"])
            else f"{stat['mean']:.3f} ± {stat['sd']:.3f}"
        )

    lines = [
        f"{summary['folds']}-fold cross-validation (mean ± SD over folds; pooled out-of-fold AUC with 95 % CI)",
        "",
        "| | ER | PR | HER2 | mean AUC | Ki-67 MAE |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| folds | {cell(summary['auc_er'])} | {cell(summary['auc_pr'])} | {cell(summary['auc_her2'])} "
        f"| {cell(summary['mean_auc'])} | {cell(summary['ki67_mae'])} |",
    ]
    pooled = summary["pooled"]

    def auc(entry):
        if math.isnan(entry["auc"]):
            return "n/a"
        return f"{entry['auc']:.3f} ({entry['ci_low']:.3f}–{entry['ci_high']:.3f})"

    lines.append(
        f"| pooled | {auc(pooled['er'])} | {auc(pooled['pr'])} | {auc(pooled['her2'])} | | "
        f"{pooled['ki67_percent']['mae']:.1f} |"
    )
    return "\n".join(lines) + "\n"
