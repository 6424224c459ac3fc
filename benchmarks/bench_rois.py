"""ROI benchmark (SPEC §11): core/rim/peritumoral on the reference case, ours vs full-volume peers.

Reference case: 512×512×160 int16 at 0.7×0.7×1.1 mm with a 20 mm lesion (the phantom generator).
Peers, run side by side in this process: SimpleITK BinaryDilate/BinaryErode with a ball (radius in
voxels per axis), full-volume SignedMaurerDistanceMap (image spacing on), full-volume scipy EDT with
``sampling``. Agreement is measured against our exact band (the same distance rule without the tissue
restriction): extra and missing voxels as a percentage of the exact band.

    .venv/bin/python benchmarks/bench_rois.py [--repeats 5]

Writes benchmarks/results/rois.json and prints a markdown table.
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
from BreastSubtypeLib.phantom import generate_phantom
from BreastSubtypeLib.phantom.generator import REFERENCE_CASE
from BreastSubtypeLib.rois import PERITUMORAL, RIM, compute_rois

RIM_MM, PERI_MM = 3.0, 5.0


def _median_seconds(function, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _ours_exact(image, mask):
    return compute_rois(image, mask, RIM_MM, PERI_MM, tissue_min=-np.inf)


def _sitk_ball(image, mask):
    spacing = np.asarray(image.GetSpacing())
    peri_radius = [int(round(PERI_MM / s)) for s in spacing]
    rim_radius = [int(round(RIM_MM / s)) for s in spacing]
    dilated = sitk.BinaryDilate(mask, peri_radius, sitk.sitkBall)
    eroded = sitk.BinaryErode(mask, rim_radius, sitk.sitkBall)
    inside = sitk.GetArrayFromImage(mask).astype(bool)
    band = sitk.GetArrayFromImage(dilated).astype(bool) & ~inside
    rim = inside & ~sitk.GetArrayFromImage(eroded).astype(bool)
    return band, rim


def _sitk_maurer(image, mask):
    # Keep the image alive while its array is used (a view of a temporary image dangles).
    distance_image = sitk.SignedMaurerDistanceMap(
        mask, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    distance = sitk.GetArrayViewFromImage(distance_image)
    return (distance > 0) & (distance <= PERI_MM), (distance <= 0) & (distance >= -RIM_MM)


def _scipy_edt(image, mask):
    inside = sitk.GetArrayViewFromImage(mask).astype(bool)
    sampling = tuple(reversed(image.GetSpacing()))
    to_tumour = ndimage.distance_transform_edt(~inside, sampling=sampling)
    to_outside = ndimage.distance_transform_edt(inside, sampling=sampling)
    return ~inside & (to_tumour <= PERI_MM), inside & (to_outside <= RIM_MM)


def _agreement(candidate: np.ndarray, exact: np.ndarray) -> dict:
    n = int(exact.sum())
    return {
        "extra_percent": round(100.0 * int((candidate & ~exact).sum()) / n, 2),
        "missing_percent": round(100.0 * int((exact & ~candidate).sum()) / n, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "rois.json"))
    args = parser.parse_args()

    case = generate_phantom(0, **REFERENCE_CASE)
    image, mask = case.image, case.tumour_mask
    print(
        f"reference case: {image.GetSize()} {sitk.GetPixelIDValueAsString(image.GetPixelID())} at "
        f"{image.GetSpacing()} mm, lesion {case.lesion_diameter_mm:.0f} mm"
    )

    ours_seconds, ours = _median_seconds(lambda: compute_rois(image, mask, RIM_MM, PERI_MM), args.repeats)
    exact = sitk.GetArrayFromImage(_ours_exact(image, mask).labelmap)
    exact_band, exact_rim = exact == PERITUMORAL, exact == RIM
    rows = [
        {
            "method": "BreastSubtype compute_rois (box + margin)",
            "median_s": ours_seconds,
            "band": {"extra_percent": 0.0, "missing_percent": 0.0},
            "rim": {"extra_percent": 0.0, "missing_percent": 0.0},
        }
    ]
    for name, peer in [
        ("SimpleITK BinaryDilate/Erode, ball", _sitk_ball),
        ("SimpleITK SignedMaurerDistanceMap, full volume", _sitk_maurer),
        ("scipy distance_transform_edt with sampling, full volume", _scipy_edt),
    ]:
        seconds, (band, rim) = _median_seconds(lambda peer=peer: peer(image, mask), args.repeats)
        rows.append(
            {
                "method": name,
                "median_s": seconds,
                "band": _agreement(band, exact_band),
                "rim": _agreement(rim, exact_rim),
            }
        )
    for row in rows:
        row["ratio_to_ours"] = round(row["median_s"] / ours_seconds, 1)
        row["median_s"] = round(row["median_s"], 4)

    result = {
        "case": {
            "size_ijk": list(image.GetSize()),
            "spacing_mm": list(image.GetSpacing()),
            "lesion_diameter_mm": round(case.lesion_diameter_mm, 1),
            "rim_mm": RIM_MM,
            "peri_mm": PERI_MM,
        },
        "volumes_ml": {k: round(v, 3) for k, v in ours.volumes_ml.items()},
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "sitk_threads": sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
        },
        "command": "python benchmarks/bench_rois.py",
        "rows": rows,
    }
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print("\n| method | median (s) | × ours | band extra % | band missing % | rim extra % | rim missing % |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['method']} | {row['median_s']:.4f} | {row['ratio_to_ours']:.1f} | "
            f"{row['band']['extra_percent']:.1f} | {row['band']['missing_percent']:.1f} | "
            f"{row['rim']['extra_percent']:.1f} | {row['rim']['missing_percent']:.1f} |"
        )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
