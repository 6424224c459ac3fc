"""``breast-subtype phantom --out DIR``: a cohort of synthetic post-contrast breast MRI phantoms.

Writes images/, masks/, manifest.csv (the format training and cohort prediction read) and
truth.csv (probabilities given the imaging, latent imaging features, real labels) into DIR.
Cohort variations (intensity type, spacing, lesion size, prevalences, missing labels, or all of
them at once with ``--profile wide``) are described in ``BreastSubtypeLib.phantom.cohort``.
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
    variation = parser.add_argument_group("cohort variation (each off by default; see --profile)")
    variation.add_argument(
        "--profile",
        choices=["wide"],
        help="a preset of the options below; wide: --intensity mixed --inplane-mm 0.5,1.5 --slice-mm 1,3 "
        "--lesion-mm 5,60 --prevalence er=0.45,pr=0.35,her2=0.3 --missing ki67=0.5 (explicit options override it)",
    )
    variation.add_argument(
        "--intensity",
        choices=["int12", "float", "unit", "mixed"],
        help="voxels as 12-bit integers (default), float32 with a random scale x0.01-x100 and offset, "
        "float32 rescaled to 0-1, or one of these drawn per case",
    )
    variation.add_argument(
        "--inplane-mm", help="range LO,HI of the per-case in-plane spacing (default: 0.6,0.9)"
    )
    variation.add_argument("--slice-mm", help="range LO,HI of the per-case slice spacing (default: 1.0,2.0)")
    variation.add_argument(
        "--lesion-mm", help="range LO,HI of lesion diameters, 3-60 mm; images grow to fit (default: 8-35 mm)"
    )
    variation.add_argument(
        "--prevalence",
        help="label prevalences, e.g. er=0.45,pr=0.35,her2=0.3 (default: er=0.7,pr=0.6,her2=0.2)",
    )
    variation.add_argument(
        "--missing",
        help="fraction of labels left blank in manifest.csv, e.g. ki67=0.5,er=0.1 (default: none)",
    )


def _numbers(text: str | None, name: str, kind, example: str):
    """``--name`` as as many numbers as ``example`` has (None when not given)."""
    from BreastSubtypeLib.errors import BadInputError

    if text is None:
        return None
    try:
        values = tuple(kind(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != example.count(",") + 1:
        raise BadInputError(f"--{name} must be comma-separated numbers like {example}, got {text!r}.")
    return values


def _fractions(text: str | None, name: str) -> dict | None:
    from BreastSubtypeLib.errors import BadInputError

    if text is None:
        return None
    result = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        try:
            result[key.strip()] = float(value)
        except ValueError:
            raise BadInputError(f"--{name} must look like er=0.3,ki67=0.5, got {text!r}.") from None
    return result


def _variation(args: argparse.Namespace) -> dict:
    return {
        "profile": args.profile,
        "intensity": args.intensity,
        "inplane_mm": _numbers(args.inplane_mm, "inplane-mm", float, "0.5,1.5"),
        "slice_mm": _numbers(args.slice_mm, "slice-mm", float, "1,3"),
        "lesion_mm": _numbers(args.lesion_mm, "lesion-mm", float, "5,60"),
        "prevalence": _fractions(args.prevalence, "prevalence"),
        "missing": _fractions(args.missing, "missing"),
    }


def run(args: argparse.Namespace) -> int:
    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeLib.phantom import REFERENCE_CASE, write_phantom_cohort
    from BreastSubtypeLib.progress import TqdmProgress

    if args.n < 1:
        raise BadInputError(f"--n must be at least 1, got {args.n}.")
    if args.workers < 1:
        raise BadInputError(f"--workers must be at least 1, got {args.workers}.")
    variation = _variation(args)
    if args.reference:
        if any(value is not None for value in variation.values()):
            raise BadInputError("--reference cases are fixed; they take no cohort variation options.")
        size, spacing = REFERENCE_CASE["size_ijk"], REFERENCE_CASE["spacing_mm"]
        options = {"vary_geometry": False, "lesion_diameter_mm": REFERENCE_CASE["lesion_diameter_mm"]}
    else:
        size, spacing = (
            _numbers(args.size, "size", int, "128,128,48"),
            _numbers(args.spacing, "spacing", float, "0.7,0.7,1.5"),
        )
        options = {"vary_geometry": not args.fixed_geometry, **variation}
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
