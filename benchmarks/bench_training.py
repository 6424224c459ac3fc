"""Training time (issue 10, SPEC §11): ``breast-subtype-train fit`` with the defaults on a 400-phantom
cohort, as a whole process, split into the crop cache (first run only) and training.

The cohort (96×96×40 phantoms, as the evaluation cohorts) is generated once under /tmp and reused;
the crop cache is rebuilt on each run, so the figure is what a user's first ``fit`` costs. Prints the
wall time of ``fit`` and the training seconds it records in metrics.json, with the load average
before and after (a busy machine slows both). Writes benchmarks/results/training.json.

    .venv/bin/python benchmarks/bench_training.py [--cases 400] [--seed 20261202] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_predict import machine, timed_child  # this folder is on sys.path when a script runs

RESULTS = Path(__file__).resolve().parent / "results" / "training.json"


def make_cohort(cases: int, seed: int) -> Path:
    folder = Path(tempfile.gettempdir()) / f"breast_subtype_bench_training_{cases}_seed{seed}"
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        command = [sys.executable, "-m", "BreastSubtypeLib.cli.main", "phantom", "--out", str(folder), "--n",
                   str(cases), "--seed", str(seed), "--size", "96,96,40", "--workers", str(os.cpu_count() or 1)]  # fmt: skip
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--seed", type=int, default=20261202, help="cohort seed (not an evaluation cohort)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()

    from BreastSubtypeLib.atomic import write_text_atomic

    manifest = make_cohort(args.cases, args.seed)
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench_training_") as scratch:
        command = [sys.executable, "-m", "BreastSubtypeTraining.cli", "fit", "--manifest", str(manifest),
                   "--out", str(Path(scratch) / "run")]  # fmt: skip
        if args.threads:
            command += ["--threads", str(args.threads)]
        seconds, peak_mb, cpu_s = timed_child(command)
        metrics = json.loads((Path(scratch) / "run" / "metrics.json").read_text(encoding="utf-8"))
    results = {
        "cases": args.cases,
        "training_cases": metrics["data"]["train"]["cases"],
        "fit_wall_seconds": seconds,
        "training_seconds": metrics["training_seconds"],
        "fit_cpu_seconds": cpu_s,
        "peak_memory_mb": peak_mb,
        "test_mean_auc": metrics["test"]["mean_auc"],
        "machine": machine(load_before),
        "command": "python benchmarks/bench_training.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS, json.dumps(results, indent=2) + "\n")
    print(
        f"fit on {args.cases} phantoms ({results['training_cases']} training cases): {seconds / 60:.1f} min whole "
        f"process, training {metrics['training_seconds'] / 60:.1f} min, peak {peak_mb:.0f} MB; "
        f"load {load_before[0]:.1f} -> {results['machine']['load_average_1_5_15_after'][0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
