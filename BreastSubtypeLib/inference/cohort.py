"""Cohort inference: a manifest in, ``DIR/predictions.csv`` and ``DIR/cases/{case_id}/`` out.

Survives bad cases (the row's status says why and the run goes on) and interruption: every case
folder appears complete or not at all, ``predictions.csv`` is rewritten atomically after each case,
and a resumed run skips every case whose folder is complete. A reader thread loads the next case
while the current one is computed.

>>> predict_cohort("cohort/manifest.csv", "results", model="demo")  # doctest: +SKIP
PosixPath('results/predictions.csv')
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.manifest import ManifestRow, read_manifest
from BreastSubtypeLib.progress import ProgressCallback, report

COLUMNS = ("case_id", "p_er", "p_pr", "p_her2", "ki67", "subtype", "status")
RUN_LOG = "run.log"  # one line per case computed, appended: shows what each run (re)did


def _row_from_summary(case_id: str, summary: dict) -> dict[str, str]:
    return {
        "case_id": case_id,
        "p_er": f"{summary['er']['probability']:.6f}",
        "p_pr": f"{summary['pr']['probability']:.6f}",
        "p_her2": f"{summary['her2']['probability']:.6f}",
        "ki67": f"{summary['ki67_percent']:.3f}",
        "subtype": str(summary["subtype"]["name"]),
        "status": "ok",
    }


def _error_row(case_id: str, message: str) -> dict[str, str]:
    return {**dict.fromkeys(COLUMNS, ""), "case_id": case_id, "status": "error: " + " ".join(message.split())}


def _finished_row(case_dir: Path, case_id: str) -> dict[str, str] | None:
    """The row of a case whose folder is complete (atomic rename ⇒ prediction.json present), else None.

    Rebuilt from prediction.json, so a kill between the folder rename and the CSV rewrite loses nothing.
    """
    try:
        summary = json.loads((case_dir / "prediction.json").read_text(encoding="utf-8"))
        return _row_from_summary(case_id, summary)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove_interrupted_writes(cases_dir: Path) -> None:
    """A kill mid-case leaves only a hidden temporary folder (``.{case}.*.tmp``/``.old``): drop it."""
    import shutil

    if cases_dir.is_dir():
        for entry in cases_dir.iterdir():
            if entry.name.startswith(".") and entry.name.endswith((".tmp", ".old")):
                shutil.rmtree(entry, ignore_errors=True)


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def _read_case(case: ManifestRow):
    """Runs on the reader thread: the images, or the user-fixable error to report for this case."""
    from BreastSubtypeLib.imaging.io import read_image

    try:
        return read_image(case.image, what="image"), read_image(case.mask, what="mask")
    except BadInputError as exc:
        return exc


def predict_cohort(
    manifest_csv: str | os.PathLike,
    out_dir: str | os.PathLike,
    model="demo",
    device: str = "auto",
    *,
    rim_mm: float | None = None,
    peri_mm: float | None = None,
    explain: bool = True,
    progress: ProgressCallback | None = None,
) -> Path:
    """Predict every case of ``manifest_csv``; return the path of ``predictions.csv``."""
    from BreastSubtypeLib.inference.outputs import write_case_outputs
    from BreastSubtypeLib.inference.predict import load_model, predict

    cases = read_manifest(manifest_csv, check_files=False, require_labels=False)
    out_dir = Path(out_dir)
    cases_dir = out_dir / "cases"
    csv_path = out_dir / "predictions.csv"
    loaded = load_model(model)  # once, and before anything is written: a bad model is a bad run

    _remove_interrupted_writes(cases_dir)
    rows: dict[str, dict[str, str]] = {}
    todo: list[ManifestRow] = []
    for case in cases:
        finished = _finished_row(cases_dir / case.case_id, case.case_id)
        if finished is not None:
            rows[case.case_id] = finished
        else:
            todo.append(case)
    out_dir.mkdir(parents=True, exist_ok=True)

    def ordered_rows() -> list[dict[str, str]]:
        return [rows[case.case_id] for case in cases if case.case_id in rows]

    _write_csv(csv_path, ordered_rows())
    report(progress, len(rows) / len(cases), f"{len(rows)} of {len(cases)} cases already done")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="case-reader") as reader:
        pending: Future = reader.submit(_read_case, todo[0]) if todo else None
        for position, case in enumerate(todo):
            current = pending
            pending = reader.submit(_read_case, todo[position + 1]) if position + 1 < len(todo) else None
            started = time.perf_counter()
            try:
                loaded_case = current.result()
                if isinstance(loaded_case, BadInputError):
                    raise loaded_case
                image, mask = loaded_case
                prediction = predict(
                    image, mask, loaded, device, rim_mm=rim_mm, peri_mm=peri_mm, explain=explain,
                    image_source=str(case.image), mask_source=str(case.mask),
                )  # fmt: skip
                summary = write_case_outputs(prediction, cases_dir / case.case_id)
                rows[case.case_id] = _row_from_summary(case.case_id, summary)
            except BadInputError as exc:
                rows[case.case_id] = _error_row(case.case_id, str(exc))
            except Exception as exc:  # an internal failure on one case must not stop a cohort
                rows[case.case_id] = _error_row(case.case_id, f"internal error {type(exc).__name__}: {exc}")
            _write_csv(csv_path, ordered_rows())
            with open(out_dir / RUN_LOG, "a", encoding="utf-8") as log:
                elapsed = time.perf_counter() - started
                log.write(f"{case.case_id}\t{rows[case.case_id]['status']}\t{elapsed:.2f}s\n")
            done = len(cases) - len(todo) + position + 1
            report(progress, done / len(cases), f"case {case.case_id} ({done}/{len(cases)})")
    return csv_path
