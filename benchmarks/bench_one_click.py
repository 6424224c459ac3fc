"""One-click tumour benchmark: Dice and time from a click at the lesion centre, and refusals elsewhere.

Phantoms at 128×128×48 (0.7×0.7×1.5 mm unless the geometry says otherwise), the click at
``case.lesion_center_ras``, Dice against the index lesion (``lesion_labels == 1``). Refusal clicks: 4
fat, 4 parenchyma and up to 4 vessel voxels per phantom (smoothed intensity bands), at least 15 mm from
the tumour; each must be refused or stay under 5 mL.

    .venv/bin/python benchmarks/bench_one_click.py [--seeds 40] [--geometry-seeds 20]

Writes benchmarks/results/one_click.json and prints a summary per geometry.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.errors import TumourSegmentationError
from BreastSubtypeLib.phantom import generate_phantom
from BreastSubtypeLib.rois.one_click import segment_tumour_from_seed

OBLIQUE = (0.866, -0.5, 0.0, 0.5, 0.866, 0.0, 0.0, 0.0, 1.0)
FLIPPED = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
GEOMETRIES = {
    "default": {},
    "flipped": {"direction": FLIPPED},
    "oblique": {"direction": OBLIQUE},
    "anisotropic": {"spacing_mm": (0.6, 0.6, 2.0)},
    "oblique_anisotropic": {"direction": OBLIQUE, "spacing_mm": (0.8, 0.8, 1.2)},
}
REFUSAL_BANDS = {"fat": (150, 300), "parenchyma": (600, 1000), "vessel": (1500, 5000)}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))


def _centre_click(seed: int, geometry: dict) -> dict:
    case = generate_phantom(seed, **geometry)
    truth = sitk.GetArrayViewFromImage(case.lesion_labels) == 1
    start = time.perf_counter()
    try:
        found = segment_tumour_from_seed(case.image, case.lesion_center_ras, seed_space="RAS")
        outcome = {
            "dice": _dice(sitk.GetArrayViewFromImage(found.mask) > 0, truth),
            "warnings": found.warnings,
        }
    except TumourSegmentationError as exc:
        outcome = {"dice": 0.0, "refused": str(exc)}
    features = case.imaging_features
    return {
        "seed": seed,
        "seconds": time.perf_counter() - start,
        "rim_enhancement": round(features["rim_enhancement"], 2),
        "necrosis_fraction": round(features["necrosis_fraction"], 2),
        **outcome,
    }


def _refusal_clicks(seed: int) -> list[dict]:
    case = generate_phantom(seed)
    values = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(case.image, 1.0))
    tumour = sitk.GetArrayViewFromImage(case.tumour_mask) > 0
    far = ndimage.distance_transform_edt(~tumour, sampling=case.image.GetSpacing()[::-1]) > 15.0
    rng = np.random.default_rng(seed)
    results = []
    for kind, (low, high) in REFUSAL_BANDS.items():
        k, j, i = np.nonzero((values >= low) & (values <= high) & far)
        for n in rng.choice(k.size, min(4, k.size), replace=False) if k.size else []:
            point = case.image.TransformIndexToPhysicalPoint((int(i[n]), int(j[n]), int(k[n])))
            try:
                found = segment_tumour_from_seed(case.image, point, seed_space="LPS")
                outcome = {"volume_ml": found.volume_ml}
            except TumourSegmentationError as exc:
                outcome = {"refused": str(exc)}
            results.append({"seed": seed, "kind": kind, **outcome})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40, help="phantoms 0..N-1 in the default geometry")
    parser.add_argument("--geometry-seeds", type=int, default=20, help="phantoms per other geometry")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "one_click.json"))
    args = parser.parse_args()

    summary, cases = {}, {}
    for name, geometry in GEOMETRIES.items():
        count = args.seeds if name == "default" else args.geometry_seeds
        rows = [_centre_click(seed, geometry) for seed in range(count)]
        dices = [row["dice"] for row in rows]
        summary[name] = {
            "phantoms": count,
            "dice_at_least_0.85": sum(d >= 0.85 for d in dices),
            "dice_median": round(statistics.median(dices), 3),
            "dice_min": round(min(dices), 3),
            "refused": sum("refused" in row for row in rows),
            "seconds_median": round(statistics.median(row["seconds"] for row in rows), 3),
            "seconds_max": round(max(row["seconds"] for row in rows), 3),
        }
        cases[name] = rows
        print(name, summary[name], flush=True)
    refusals = [row for seed in range(min(args.seeds, 20)) for row in _refusal_clicks(seed)]
    accepted = [row for row in refusals if "volume_ml" in row]
    summary["refusal_clicks"] = {
        "clicks": len(refusals),
        "refused": len(refusals) - len(accepted),
        "accepted_max_ml": round(max((row["volume_ml"] for row in accepted), default=0.0), 3),
    }
    print("refusal clicks", summary["refusal_clicks"])
    result = {
        "command": "benchmarks/bench_one_click.py "
        + f"--seeds {args.seeds} --geometry-seeds {args.geometry_seeds}",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        "summary": summary,
        "cases": cases,
        "refusal_clicks": refusals,
    }
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
