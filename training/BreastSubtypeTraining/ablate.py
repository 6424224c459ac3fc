"""The paper's ablation study as a table (SPEC §1, §8): every ``ABLATIONS`` variant trained on the
same splits with the same training config, evaluated on the same test cases.

Writes ``DIR/ablation.csv`` and ``DIR/ablation.md`` (variant, AUC ER/PR/HER2 with 95 % CI, mean
AUC, Ki-67 MAE), plus, for phantom cohorts, the achievable ceiling row. Each variant lives in
``DIR/{variant}``; finished variants are reused, so an interrupted table resumes.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.model.config import ABLATIONS
from BreastSubtypeLib.tasks import RECEPTORS
from BreastSubtypeTraining.splits import training_splits
from BreastSubtypeTraining.train import fit

# What each variant removes, in the paper's words (SPEC §1).
DESCRIPTIONS = {
    "full": "full model",
    "no_attention": "w/o multi-scale attention",
    "single_scale_attention": "single-scale attention",
    "no_peritumoral": "w/o peritumoral features",
    "core_only": "tumour core only",
    "single_task": "w/o multi-task (one network per task)",
    "no_shared_extractor": "w/o shared extractor",
}
CSV_COLUMNS = (
    "variant", "description",
    *(f"{prefix}_{task}" for task in RECEPTORS for prefix in ("auc", "ci_low", "ci_high")),
    "mean_auc", "ki67_mae", "epochs_run", "training_seconds",
)  # fmt: skip


def table_rows(results: dict[str, dict]) -> list[dict]:
    rows = []
    for variant, result in results.items():
        test = result.get("test", {})
        row = {"variant": variant, "description": DESCRIPTIONS.get(variant, variant)}
        for task in RECEPTORS:
            entry = test.get(task, {})
            row.update({f"auc_{task}": entry.get("auc"), f"ci_low_{task}": entry.get("ci_low"),
                        f"ci_high_{task}": entry.get("ci_high")})  # fmt: skip
        row["mean_auc"] = test.get("mean_auc")
        row["ki67_mae"] = test.get("ki67_percent", {}).get("mae")
        row["epochs_run"] = result.get("epochs_run")
        row["training_seconds"] = result.get("training_seconds")
        rows.append(row)
    return rows


def _f(value, digits=3):
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def markdown_table(rows: list[dict], ceiling: dict | None = None) -> str:
    lines = [
        "| variant | AUC ER (95 % CI) | AUC PR (95 % CI) | AUC HER2 (95 % CI) | mean AUC | Ki-67 MAE (points) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def auc(row, task):
        return f"{_f(row[f'auc_{task}'])} ({_f(row[f'ci_low_{task}'])}–{_f(row[f'ci_high_{task}'])})"

    for row in rows:
        lines.append(
            f"| {row['description']} (`{row['variant']}`) | {auc(row, 'er')} | {auc(row, 'pr')} | {auc(row, 'her2')} "
            f"| {_f(row['mean_auc'])} | {_f(row['ki67_mae'], 1)} |"
        )
    if ceiling:
        cells = [
            f"{_f(ceiling[t]['auc'])} ({_f(ceiling[t]['ci_low'])}–{_f(ceiling[t]['ci_high'])})"
            for t in RECEPTORS
        ]
        lines.append(
            f"| achievable (phantom truth) | {' | '.join(cells)} | {_f(ceiling.get('mean_auc'))} "
            f"| {_f(ceiling['ki67_percent']['mae'], 1)} (noise floor) |"
        )
    return "\n".join(lines) + "\n"


def run_ablations(
    rows: Sequence,
    out_dir: str | Path,
    config,
    *,
    variants: Sequence[str] | None = None,
    device: str = "auto",
    truth_csv: str | Path | None = None,
    progress=None,
) -> list[dict]:
    variants = list(variants or ABLATIONS)
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown:
        raise BadInputError(
            f"unknown ablation variant(s) {', '.join(unknown)} (choose among {', '.join(ABLATIONS)})."
        )
    out_dir = Path(out_dir)
    # Fix the splits once, so every variant sees exactly the same train/val/test cases.
    splits = training_splits(rows, fractions=config.split_ratios, seed=config.split_seed)
    fixed_rows = [row for name in ("train", "val", "test") for row in splits[name]]
    shared = dataclasses.replace(config, cache_dir=config.cache_dir or str(out_dir / "cache"))
    results = {}
    for index, variant in enumerate(variants):
        variant_dir = out_dir / variant
        if not (variant_dir / "metrics.json").is_file():
            fit(
                fixed_rows,
                variant_dir,
                dataclasses.replace(shared, ablation=variant),
                device=device,
                resume=True,
                truth_csv=truth_csv,
            )
        results[variant] = json.loads((variant_dir / "metrics.json").read_text(encoding="utf-8"))
        if progress is not None:
            progress((index + 1) / len(variants), f"ablation {variant}")
    rows_out = table_rows(results)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows_out:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    write_text_atomic(out_dir / "ablation.csv", buffer.getvalue())
    ceiling = next(iter(results.values())).get("test", {}).get("phantom_ceiling")
    write_text_atomic(out_dir / "ablation.md", markdown_table(rows_out, ceiling))
    return rows_out
