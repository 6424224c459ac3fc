"""Cohort throughput: cases per minute of ``breast-subtype predict --manifest`` on full-size phantoms
(the SPEC §11 reference geometry, 512x512x160 at 0.7x0.7x1.1 mm, NIfTI .nii.gz as the phantom
command writes them), every output of every case written, for each ``--workers`` setting.

The phantoms are generated once under /tmp (not in the repository) and reused by later runs. Each
setting runs as a whole process (interpreter, model loading and worker start-up included), the
settings alternate when repeated, and the predictions of every setting must be identical. Writes
benchmarks/results/cohort.json with the load average before and after.

    .venv/bin/python benchmarks/bench_cohort.py [--cases 100] [--workers 1,2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_predict import machine, timed_child  # this folder is on sys.path when a script runs

RESULTS = Path(__file__).resolve().parent / "results" / "cohort.json"


def cohort_folder(cases: int, seed: int) -> Path:
    return Path(tempfile.gettempdir()) / f"breast_subtype_bench_cohort_{cases}_seed{seed}"


def make_cohort(cases: int, seed: int) -> tuple[Path, float | None]:
    """The manifest of ``cases`` reference phantoms (generated unless already there), and the seconds taken."""
    folder = cohort_folder(cases, seed)
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        return manifest, None
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    command = [sys.executable, "-m", "BreastSubtypeLib.cli.main", "phantom", "--reference", "--n", str(cases),
               "--seed", str(seed), "--workers", str(os.cpu_count() or 1), "--out", str(folder)]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return manifest, time.perf_counter() - started


def run_cohort(manifest: Path, out_dir: Path, workers: int, model: str) -> dict:
    command = [sys.executable, "-m", "BreastSubtypeLib.cli.main", "predict", "--manifest", str(manifest),
               "--out", str(out_dir), "--workers", str(workers), "--model", model, "--device", "cpu"]  # fmt: skip
    seconds, peak_mb, cpu_s = timed_child(command)
    with open(out_dir / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    compute = [
        float(line.split("\t")[2].rstrip("s"))
        for line in (out_dir / "run.log").read_text(encoding="utf-8").splitlines()
    ]
    return {
        "seconds": seconds,
        "cases_per_minute": 60.0 * len(rows) / seconds,
        "ok": sum(row["status"] == "ok" for row in rows),
        "median_case_seconds_on_its_worker": statistics.median(compute),
        "peak_memory_mb_largest_process": peak_mb,
        "cpu_s": cpu_s,
        "predictions": (out_dir / "predictions.csv").read_text(encoding="utf-8"),
    }


def read_seconds(manifest: Path, cases: int = 3) -> float:
    from BreastSubtypeLib.imaging.io import read_image
    from BreastSubtypeLib.manifest import read_manifest

    seconds = []
    for case in read_manifest(manifest, require_labels=False)[:cases]:
        started = time.perf_counter()
        read_image(case.image), read_image(case.mask, what="mask")
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100, help="full-size phantoms (default: 100)")
    parser.add_argument("--workers", default="1,2", help="comma-separated --workers settings (default: 1,2)")
    parser.add_argument("--repeats", type=int, default=1, help="alternated runs of each setting")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="demo")
    args = parser.parse_args()
    settings = [int(value) for value in args.workers.split(",")]

    from BreastSubtypeLib.atomic import write_text_atomic
    from BreastSubtypeLib.inference.cohort import cores_given

    manifest, generation_s = make_cohort(args.cases, args.seed)
    load_before = list(os.getloadavg())
    read_s = read_seconds(manifest)
    runs: dict[int, list[dict]] = {workers: [] for workers in settings}
    with tempfile.TemporaryDirectory(prefix="bench_cohort_") as scratch:
        for repeat in range(args.repeats):
            for workers in settings:
                out_dir = Path(scratch) / f"w{workers}_r{repeat}"
                runs[workers].append(run_cohort(manifest, out_dir, workers, args.model))
                shutil.rmtree(out_dir)
    predictions = {run.pop("predictions") for per in runs.values() for run in per}
    summary = {
        str(workers): {
            "cases_per_minute_median": statistics.median(run["cases_per_minute"] for run in per),
            "seconds_median": statistics.median(run["seconds"] for run in per),
            "runs": per,
        }
        for workers, per in runs.items()
    }
    results = {
        "cohort": {
            "cases": args.cases,
            "seed": args.seed,
            "geometry": "512x512x160 int16 at 0.7x0.7x1.1 mm, 20 mm lesion, .nii.gz (phantom --reference)",
            "folder": str(manifest.parent),
            "generation_s": generation_s,
        },
        "model": args.model,
        # What the prefetch thread hides: reading one case's image and mask, measured on its own.
        "read_case_seconds_median": read_s,
        "workers": summary,
        "identical_predictions_for_every_setting": len(predictions) == 1,
        "machine": machine(load_before, cores_given=cores_given()),
        "command": "python benchmarks/bench_cohort.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS, json.dumps(results, indent=2) + "\n")

    print(
        f"| --workers ({args.cases} full-size cases, every output written) | cases/min | s/case | peak MB |"
    )
    print("| --- | --- | --- | --- |")
    for workers, entry in summary.items():
        peak = max(run["peak_memory_mb_largest_process"] for run in entry["runs"])
        per_case = entry["seconds_median"] / args.cases
        print(f"| {workers} | {entry['cases_per_minute_median']:.1f} | {per_case:.2f} | {peak:.0f} |")
    print(f"reading one case (hidden by the prefetch thread): {read_s:.2f} s")
    print(f"identical predictions for every setting: {results['identical_predictions_for_every_setting']}")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; written: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
