"""Where the heatmaps of a model point, over many phantoms (SPEC §9; issue 10's targets): each
attention map's mass inside core/rim/peritumoral (target ≥ 80 %) and each Grad-CAM map's mass within
10 mm of them (target ≥ 60 %), on the input grid as Slicer shows them; empty maps counted apart.

Phantoms: 96×96×40 at 0.8×0.8×1.5 mm, lesions 8-30 mm, every other one stored with flipped axes.

    .venv/bin/python benchmarks/heatmap_shares.py [--model demo] [--cases 12] [--seed 500] [--out F.json]

Prints median and minimum per map and writes them to ``--out``; by default the demonstration model's
figures go to benchmarks/results/heatmap_shares.json (the README's), and another model's only where
``--out`` says, so measuring a candidate never overwrites the shipped model's record.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import SimpleITK as sitk

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.inference.map_mass import distance_from_rois_mm, mass_share
from BreastSubtypeLib.inference.predict import load_model, predict
from BreastSubtypeLib.phantom import generate_phantom

RESULTS = Path(__file__).resolve().parent / "results" / "heatmap_shares.json"
FLIPPED = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def case_shares(result) -> dict[str, float | None]:
    inside = sitk.GetArrayViewFromImage(result.roi.labelmap) > 0
    near = distance_from_rois_mm(result.roi.labelmap) <= 10.0
    return {
        name: mass_share(result.maps[name], inside if name.startswith("attention") else near)
        for name in result.maps
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--seed", type=int, default=500)
    parser.add_argument("--out", type=Path, help="JSON file for the figures (default: see above)")
    args = parser.parse_args()
    out = args.out or (RESULTS if args.model == "demo" else None)
    model = load_model(args.model)
    per_map: dict[str, list[float]] = {}
    empty: dict[str, int] = {}
    for index in range(args.cases):
        case = generate_phantom(
            args.seed + index, size_ijk=(96, 96, 40), spacing_mm=(0.8, 0.8, 1.5),
            direction=FLIPPED if index % 2 else None, lesion_diameter_mm=8.0 + 22.0 * index / max(args.cases - 1, 1),
        )  # fmt: skip
        for name, share in case_shares(predict(case.image, case.tumour_mask, model, "cpu")).items():
            if share is None:
                empty[name] = empty.get(name, 0) + 1
            else:
                per_map.setdefault(name, []).append(share)
    summary = {
        name: {
            "median": statistics.median(v),
            "minimum": min(v),
            "cases": len(v),
            "empty": empty.get(name, 0),
        }
        for name, v in per_map.items()
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(
            out, json.dumps({"model": args.model, "cases": args.cases, "maps": summary}, indent=2)
        )
    print("| map | where | median | minimum | empty |\n| --- | --- | ---: | ---: | ---: |")
    for name, figures in summary.items():
        where = "in ROIs" if name.startswith("attention") else "within 10 mm"
        print(
            f"| {name} | {where} | {100 * figures['median']:.0f} % | {100 * figures['minimum']:.0f} % "
            f"| {figures['empty']} |"
        )


if __name__ == "__main__":
    main()
