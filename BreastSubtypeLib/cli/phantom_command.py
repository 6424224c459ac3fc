"""``breast-subtype phantom --out DIR``: a cohort of synthetic post-contrast breast MRI phantoms.

Writes images/, masks/, manifest.csv (the format training and cohort prediction read) and
truth.csv (probabilities given the imaging and the latent imaging features) into DIR.
"""

from __future__ import annotations

import argparse

HELP = "write synthetic breast DCE-MRI phantoms with tumour masks, manifest.csv and truth.csv"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--n", type=int, default=10, help="number of cases (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="cohort seed (default: 0)")
    parser.add_argument("--size", default="128,128,48", help="voxels i,j,k (default: 128,128,48)")
    parser.add_argument("--spacing", default="0.7,0.7,1.5", help="spacing in mm (default: 0.7,0.7,1.5)")
    parser.add_argument(
        "--fixed-geometry",
        action="store_true",
        help="every case on the same grid (default: spacing and axis flips vary per case)",
    )
    parser.add_argument(
        "--reference",
        action="store_true",
        help="full-size reference cases: 512x512x160 at 0.7x0.7x1.1 mm, 20 mm lesion",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes generating cases (default: 1)")


def _triple(text: str, name: str, kind):
    from BreastSubtypeLib.errors import BadInputError

    try:
        values = tuple(kind(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise BadInputError(f"--{name} must be three comma-separated numbers like 128,128,48, got {text!r}.")
    return values


def run(args: argparse.Namespace) -> int:
    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeLib.phantom import REFERENCE_CASE, write_phantom_cohort
    from BreastSubtypeLib.progress import TqdmProgress

    if args.n < 1:
        raise BadInputError(f"--n must be at least 1, got {args.n}.")
    if args.workers < 1:
        raise BadInputError(f"--workers must be at least 1, got {args.workers}.")
    if args.reference:
        size, spacing = REFERENCE_CASE["size_ijk"], REFERENCE_CASE["spacing_mm"]
        options = {"vary_geometry": False, "lesion_diameter_mm": REFERENCE_CASE["lesion_diameter_mm"]}
    else:
        size, spacing = _triple(args.size, "size", int), _triple(args.spacing, "spacing", float)
        options = {"vary_geometry": not args.fixed_geometry}
    bar = TqdmProgress("phantoms")
    try:
        manifest = write_phantom_cohort(args.out, args.n, args.seed, size_ijk=size, spacing_mm=spacing,
                                        progress=bar, workers=args.workers, **options)  # fmt: skip
    finally:
        bar.close()
    print(
        f"Wrote {args.n} phantom case(s) to {manifest.parent}: manifest {manifest}, truth {manifest.parent / 'truth.csv'}"
    )
    return 0
