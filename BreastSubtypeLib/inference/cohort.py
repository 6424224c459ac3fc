"""Cohort inference: a manifest in, ``DIR/predictions.csv`` and ``DIR/cases/{case_id}/`` out.

Survives bad cases (the row's status says why and the run goes on) and interruption: every case
folder appears complete or not at all, ``predictions.csv`` is rewritten atomically after each case,
and a resumed run skips every case whose folder is complete.

Throughput: a reader thread loads the next case while the current one is computed and written;
``workers`` processes share the cases (each with its share of the cores), and the predictions do
not depend on how many there are. Past one machine: ``shard=(i, n)`` keeps the cases whose stable
hash of ``case_id`` falls in shard i of n and writes ``DIR/shard-i-of-n/`` (a Slurm or PBS job
array runs one shard per task, each resumable on its own); :func:`merge_shards` then writes one
``DIR/predictions.csv`` and refuses a merge with a missing or duplicated case.

>>> predict_cohort("cohort/manifest.csv", "results", model="demo")  # doctest: +SKIP
PosixPath('results/predictions.csv')
>>> predict_cohort("cohort/manifest.csv", "results", shard=(3, 10))  # doctest: +SKIP
PosixPath('results/shard-0003-of-0010/predictions.csv')
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import queue
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.manifest import ManifestRow, read_manifest
from BreastSubtypeLib.progress import ProgressCallback, report
from BreastSubtypeLib.subtype import DEFAULT_SCHEME

# warnings: the case's prediction.json warnings on one line, joined by WARNING_SEPARATOR (a narrowed
# rim, a cut band, a lesion far outside the model's training cohort), so a cohort's reader sees them.
COLUMNS = ("case_id", "p_er", "p_pr", "p_her2", "ki67", "subtype", "status", "warnings")
WARNING_SEPARATOR = " | "
RUN_LOG = "run.log"  # one line per case computed, appended: shows what each run (re)did
PREDICTIONS_CSV = "predictions.csv"
_SHARD_FOLDER = re.compile(r"^shard-(\d+)-of-(\d+)$")


@dataclass(frozen=True)
class CohortSettings:
    """How every case of a run is predicted (plain data: it travels to worker processes)."""

    model: str
    device: str = "auto"
    rim_mm: float | None = None
    peri_mm: float | None = None
    explain: bool = True
    scheme: str = DEFAULT_SCHEME
    include_patient_info: bool = False


# ---- shards -------------------------------------------------------------------------------------


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` → (I, N) with 0 <= I < N (Slurm's and PBS's array indices start at 0 here)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
        raise BadInputError(f"--shard must be I/N with 0 <= I < N (e.g. 0/10 ... 9/10), got {text!r}.")
    return int(match.group(1)), int(match.group(2))


def shard_of(case_id: str, count: int) -> int:
    """The shard (0..count-1) of a case: a stable hash of its id, so a case stays in its shard
    whatever else the manifest holds or in which order (adding cases never moves finished ones)."""
    digest = hashlib.sha256(case_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def shard_folder(out_dir: str | os.PathLike, index: int, count: int) -> Path:
    return Path(out_dir) / f"shard-{index:04d}-of-{count:04d}"


# ---- predictions.csv ----------------------------------------------------------------------------


def _row_from_summary(case_id: str, summary: dict) -> dict[str, str]:
    return {
        "case_id": case_id,
        "p_er": f"{summary['er']['probability']:.6f}",
        "p_pr": f"{summary['pr']['probability']:.6f}",
        "p_her2": f"{summary['her2']['probability']:.6f}",
        "ki67": f"{summary['ki67_percent']:.3f}",
        "subtype": str(summary["subtype"]["name"]),
        "status": "ok",
        "warnings": WARNING_SEPARATOR.join(" ".join(str(w).split()) for w in summary.get("warnings", [])),
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


def _csv_line(row: dict[str, str]) -> str:
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def _write_csv(path: Path, lines: Iterable[str]) -> None:
    write_text_atomic(path, ",".join(COLUMNS) + "\n" + "".join(lines))


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _remove_interrupted_writes(cases_dir: Path) -> None:
    """A kill mid-case leaves only a hidden temporary folder (``.{case}.*.tmp``/``.old``): drop it."""
    import shutil

    if cases_dir.is_dir():
        for entry in cases_dir.iterdir():
            if entry.name.startswith(".") and entry.name.endswith((".tmp", ".old")):
                shutil.rmtree(entry, ignore_errors=True)


# ---- one case -----------------------------------------------------------------------------------


def _read_case(case: ManifestRow, include_patient_info: bool):
    """Runs on the reader thread: (image, mask, patient info or None), or the user-fixable error."""
    from BreastSubtypeLib.imaging.io import read_image
    from BreastSubtypeLib.inference.patient_info import read_patient_info

    try:
        image, mask = read_image(case.image, what="image"), read_image(case.mask, what="mask")
        return image, mask, read_patient_info(case.image) if include_patient_info else None
    except BadInputError as exc:
        return exc


def _prefetched(cases: Iterable[ManifestRow], read: Callable) -> Iterator[tuple[ManifestRow, object]]:
    """Each case with ``read(case)``; the next case is read on a thread while the caller works on this one."""
    upcoming = iter(cases)

    def read_next():
        case = next(upcoming, None)
        return None if case is None else (case, read(case))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="case-reader") as reader:
        pending = reader.submit(read_next)
        while (item := pending.result()) is not None:
            pending = reader.submit(read_next)
            yield item


def _run_cases(
    cases: Iterable[ManifestRow], settings: CohortSettings, loaded, cases_dir: Path, on_row: Callable
) -> None:
    """Predict and write each case; ``on_row(case_id, row, seconds)`` after each one, errors included."""
    from BreastSubtypeLib.inference.outputs import write_case_outputs
    from BreastSubtypeLib.inference.predict import predict

    def read(case):
        return _read_case(case, settings.include_patient_info)

    for case, loaded_case in _prefetched(cases, read):
        started = time.perf_counter()
        try:
            if isinstance(loaded_case, BadInputError):
                raise loaded_case
            image, mask, patient = loaded_case
            prediction = predict(
                image, mask, loaded, settings.device, rim_mm=settings.rim_mm, peri_mm=settings.peri_mm,
                explain=settings.explain, scheme=settings.scheme, image_source=str(case.image),
                mask_source=str(case.mask),
            )  # fmt: skip
            summary = write_case_outputs(prediction, cases_dir / case.case_id, patient_info=patient)
            row = _row_from_summary(case.case_id, summary)
        except BadInputError as exc:
            row = _error_row(case.case_id, str(exc))
        except Exception as exc:  # an internal failure on one case must not stop a cohort
            row = _error_row(case.case_id, f"internal error {type(exc).__name__}: {exc}")
        on_row(case.case_id, row, time.perf_counter() - started)


# ---- worker processes ---------------------------------------------------------------------------


def cores_given() -> int:
    """The cores this process may use (a Slurm/PBS allocation or taskset narrows them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _worker(settings: CohortSettings, cases_dir: Path, threads: int, tasks, results) -> None:
    """A worker process: its share of the cores, the model once, then cases until the queue says stop."""
    os.environ["OMP_NUM_THREADS"] = str(threads)  # before torch starts its thread pool
    try:
        import SimpleITK as sitk
        import torch

        from BreastSubtypeLib.inference.predict import load_model

        torch.set_num_threads(threads)
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
        loaded = load_model(settings.model)

        def incoming():
            while (case := tasks.get()) is not None:
                yield case

        _run_cases(incoming(), settings, loaded, cases_dir, lambda *done: results.put(("row", *done)))
        results.put(("exit", None))
    except BaseException as exc:  # the parent reports it; a worker never dies silently
        results.put(("failed", f"{type(exc).__name__}: {exc}"))


def _run_in_workers(
    todo: list[ManifestRow], settings: CohortSettings, cases_dir: Path, workers: int, on_row: Callable
) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # never fork a process that holds torch threads
    tasks, results = context.Queue(), context.Queue()
    for case in todo:
        tasks.put(case)
    for _ in range(workers):
        tasks.put(None)
    threads = max(1, cores_given() // workers)
    processes = [
        context.Process(target=_worker, args=(settings, cases_dir, threads, tasks, results), daemon=True)
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    running = workers
    try:
        while running:
            try:
                kind, *payload = results.get(timeout=1.0)
            except queue.Empty:
                if not any(process.is_alive() for process in processes):
                    codes = [process.exitcode for process in processes]
                    raise RuntimeError(f"cohort worker processes ended early (exit codes {codes})") from None
                continue
            if kind == "row":
                on_row(*payload)
            elif kind == "failed":
                raise RuntimeError(f"a cohort worker process failed: {payload[0]}")
            else:
                running -= 1
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()


# ---- the run ------------------------------------------------------------------------------------


def predict_cohort(
    manifest_csv: str | os.PathLike,
    out_dir: str | os.PathLike,
    model="demo",
    device: str = "auto",
    *,
    rim_mm: float | None = None,
    peri_mm: float | None = None,
    explain: bool = True,
    scheme: str = DEFAULT_SCHEME,
    include_patient_info: bool = False,
    shard: tuple[int, int] | None = None,
    workers: int = 1,
    progress: ProgressCallback | None = None,
) -> Path:
    """Predict every case of ``manifest_csv`` (or of one shard of it); return the path of ``predictions.csv``."""
    from BreastSubtypeLib.inference.predict import load_model

    if workers < 1:
        raise BadInputError(f"--workers must be at least 1, got {workers}.")
    cases = read_manifest(manifest_csv, check_files=False, require_labels=False)
    out_dir = Path(out_dir)
    if shard is not None:
        index, count = shard
        cases = [case for case in cases if shard_of(case.case_id, count) == index]
        out_dir = shard_folder(out_dir, index, count)
    cases_dir = out_dir / "cases"
    csv_path = out_dir / PREDICTIONS_CSV
    loaded = load_model(model)  # once, and before anything is written: a bad model is a bad run
    settings = CohortSettings(
        model=str(loaded.path), device=device, rim_mm=rim_mm, peri_mm=peri_mm, explain=explain,
        scheme=scheme, include_patient_info=include_patient_info,
    )  # fmt: skip

    _remove_interrupted_writes(cases_dir)
    lines: dict[str, str] = {}
    todo: list[ManifestRow] = []
    for case in cases:
        finished = _finished_row(cases_dir / case.case_id, case.case_id)
        if finished is not None:
            lines[case.case_id] = _csv_line(finished)
        else:
            todo.append(case)
    out_dir.mkdir(parents=True, exist_ok=True)

    def write_csv() -> None:
        _write_csv(csv_path, (lines[case.case_id] for case in cases if case.case_id in lines))

    write_csv()
    total = max(len(cases), 1)
    report(progress, len(lines) / total, f"{len(lines)} of {len(cases)} cases already done")

    def on_row(case_id: str, row: dict[str, str], seconds: float) -> None:
        lines[case_id] = _csv_line(row)
        write_csv()
        with open(out_dir / RUN_LOG, "a", encoding="utf-8") as log:
            log.write(f"{case_id}\t{row['status']}\t{seconds:.2f}s\n")
        done = len(lines)
        report(progress, done / total, f"case {case_id} ({done}/{len(cases)})")

    if workers == 1 or len(todo) <= 1:
        _run_cases(todo, settings, loaded, cases_dir, on_row)
    else:
        _run_in_workers(todo, settings, cases_dir, min(workers, len(todo)), on_row)
    return csv_path


def merge_shards(manifest_csv: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """One ``out_dir/predictions.csv`` (manifest order) from the ``shard-i-of-n`` folders in ``out_dir``.

    Refused (``BadInputError``, nothing written) when a case of the manifest has no row, when a case
    has rows in two shards, when a row names a case the manifest lacks, or when the folders come
    from different splits.
    """
    cases = read_manifest(manifest_csv, check_files=False, require_labels=False)
    out_dir = Path(out_dir)
    folders = sorted(p for p in out_dir.glob("shard-*-of-*") if p.is_dir() and _SHARD_FOLDER.match(p.name))
    if not folders:
        raise BadInputError(
            f"Cannot merge: {out_dir} holds no shard-I-of-N folders (run predict --shard first)."
        )
    splits = sorted({int(_SHARD_FOLDER.match(p.name).group(2)) for p in folders})
    if len(splits) > 1:
        raise BadInputError(
            f"Cannot merge: {out_dir} holds shards of {len(splits)} different splits "
            f"({', '.join(f'of {n}' for n in splits)}); keep the folders of one --shard I/N run."
        )
    rows: dict[str, dict[str, str]] = {}
    duplicated: list[str] = []
    for folder in folders:
        path = folder / PREDICTIONS_CSV
        for row in _read_csv(path) if path.is_file() else []:
            if row.get("case_id") in rows:
                duplicated.append(row["case_id"])
            rows[row.get("case_id", "")] = row
    known = {case.case_id for case in cases}
    missing = [case.case_id for case in cases if case.case_id not in rows]
    unknown = sorted(case_id for case_id in rows if case_id not in known)
    problems = []
    for cases_found, what in (
        (missing, f"of {Path(manifest_csv).name} have no row in any shard (a shard unfinished or not run)"),
        (sorted(set(duplicated)), "have rows in two shards"),
        (unknown, f"are not in {Path(manifest_csv).name}"),
    ):
        if cases_found:
            shown = ", ".join(cases_found[:5]) + (", ..." if len(cases_found) > 5 else "")
            problems.append(f"{len(cases_found)} case(s) {what} ({shown})")
    if problems:
        raise BadInputError(f"Cannot merge the shards in {out_dir}: " + "; ".join(problems) + ".")
    merged = out_dir / PREDICTIONS_CSV
    _write_csv(
        merged, (_csv_line({name: rows[case.case_id].get(name, "") for name in COLUMNS}) for case in cases)
    )
    return merged
