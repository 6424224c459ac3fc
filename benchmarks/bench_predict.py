"""End-to-end prediction on the SPEC §11 reference case (512x512x160 int16 at 0.7x0.7x1.1 mm, 20 mm
lesion) against PyRadiomics' default feature extraction on the same image and mask.

Reports (medians): ``predict`` in memory with fused attention and per-task Grad-CAM maps on the full
input grid; ``breast-subtype predict`` as a whole process from files with every output written, and
its peak memory (ru_maxrss of that child); PyRadiomics ``RadiomicsFeatureExtractor()`` with default
settings as a whole process. Writes benchmarks/results/predict.json.

    .venv/bin/python benchmarks/bench_predict.py [--repeats 5] [--model demo]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "predict.json"
RADIOMICS_CHILD = """
import sys, logging
logging.getLogger("radiomics").setLevel(logging.ERROR)
from radiomics import featureextractor
features = featureextractor.RadiomicsFeatureExtractor().execute(sys.argv[1], sys.argv[2])
print(len(features))
"""


def timed_child(command: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak resident MB of exactly this child, exit status)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed: {process.stderr.read().decode()[-2000:]}")
    process.stderr.close()
    return elapsed, usage.ru_maxrss / 1024.0, process.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="demo", help="registry id or package (default: demo)")
    parser.add_argument("--radiomics-repeats", type=int, default=3)
    args = parser.parse_args()

    import SimpleITK as sitk
    import torch

    from BreastSubtypeLib.atomic import write_text_atomic
    from BreastSubtypeLib.inference.predict import load_model, predict
    from BreastSubtypeLib.phantom import REFERENCE_CASE, generate_phantom

    with tempfile.TemporaryDirectory(prefix="bench_predict_") as scratch:
        scratch = Path(scratch)
        case = generate_phantom(11, **REFERENCE_CASE)
        image_path, mask_path = scratch / "image.nrrd", scratch / "mask.nrrd"
        sitk.WriteImage(case.image, str(image_path), True)
        sitk.WriteImage(case.tumour_mask, str(mask_path), True)
        model = load_model(args.model)

        predict(case.image, case.tumour_mask, model, "cpu")  # warm-up: first-call allocations
        in_memory, stages = [], []
        for _ in range(args.repeats):
            started = time.perf_counter()
            result = predict(case.image, case.tumour_mask, model, "cpu")
            built = time.perf_counter()
            for name in result.maps:  # every map on the full input grid, as a caller would use it
                on_grid = result.maps[name]
                del on_grid
            in_memory.append(time.perf_counter() - started)
            stages.append({**result.timings_s, "maps_on_input_grid": time.perf_counter() - built})
        stage_medians = {name: statistics.median(s[name] for s in stages) for name in stages[0]}

        process_runs = []
        for index in range(args.repeats):
            out = scratch / f"out{index}"
            command = [sys.executable, "-m", "BreastSubtypeLib.cli.main", "predict", "--image", str(image_path),
                       "--mask", str(mask_path), "--out", str(out), "--model", str(args.model), "--device", "cpu"]  # fmt: skip
            process_runs.append(timed_child(command))
        output_mb = sum(p.stat().st_size for p in (scratch / "out0").iterdir()) / 1e6

        radiomics_runs = []
        try:
            for _ in range(args.radiomics_repeats):
                radiomics_runs.append(
                    timed_child([sys.executable, "-c", RADIOMICS_CHILD, str(image_path), str(mask_path)])
                )
        except RuntimeError as exc:
            print(f"PyRadiomics could not run: {exc}", file=sys.stderr)

    median_process = statistics.median(run[0] for run in process_runs)
    peak_mb = max(run[1] for run in process_runs)
    radiomics_s = statistics.median(run[0] for run in radiomics_runs) if radiomics_runs else None
    results = {
        "case": {
            **{k: list(v) if isinstance(v, tuple) else v for k, v in REFERENCE_CASE.items()},
            "seed": 11,
        },
        "model": {"spec": args.model, **result.model},
        "predict_in_memory_s": {"median": statistics.median(in_memory), "runs": in_memory},
        "predict_in_memory_stages_s": stage_medians,
        "predict_process_from_files_s": {"median": median_process, "runs": [r[0] for r in process_runs]},
        "predict_process_peak_memory_mb": peak_mb,
        "predict_outputs_mb": output_mb,
        "pyradiomics_default_process_s": {"median": radiomics_s, "runs": [r[0] for r in radiomics_runs]},
        "pyradiomics_peak_memory_mb": max((r[1] for r in radiomics_runs), default=None),
        "speedup_vs_pyradiomics": {
            "in_memory": radiomics_s / statistics.median(in_memory) if radiomics_s else None,
            "process": radiomics_s / median_process if radiomics_s else None,
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_1_5_15": list(os.getloadavg()),  # other work on the machine skews every figure
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "platform": platform.platform(),
        },
        "command": "python benchmarks/bench_predict.py " + " ".join(sys.argv[1:]),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS, json.dumps(results, indent=2) + "\n")

    def fmt(value, unit="s"):
        return "-" if value is None else f"{value:.2f} {unit}"

    print("| measurement (reference case 512x512x160) | median | target |")
    print("| --- | --- | --- |")
    print(
        f"| predict in memory (attention + Grad-CAM on the input grid) | {fmt(statistics.median(in_memory))} | <= 1.5 s |"
    )
    print(
        f"| breast-subtype predict, whole process from files, all outputs | {fmt(median_process)} | <= 3 s |"
    )
    print(f"| peak memory of that process | {fmt(peak_mb, 'MB')} | <= 1500 MB |")
    print(f"| PyRadiomics default extraction, whole process | {fmt(radiomics_s)} | |")
    speedup = results["speedup_vs_pyradiomics"]
    if radiomics_s:
        print(
            f"| speed-up vs PyRadiomics (in memory / process) | {speedup['in_memory']:.1f}x / {speedup['process']:.1f}x | >= 4x |"
        )
    print("\nstages (median s): " + ", ".join(f"{k} {v:.3f}" for k, v in stage_medians.items()))
    print(f"written: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
