"""``breast-subtype roi``: core/rim/peritumoral labelmap from a tumour mask or from one click."""

from __future__ import annotations

import argparse

HELP = "core/rim/peritumoral labelmap (1/2/3, input geometry) from a tumour mask or a seed point"
# Points whose first value is negative must be written --seed-ras=-12.5,3,40 (argparse would take
# "-12.5,3,40" for an option).


def _point(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="post-contrast volume (file or DICOM series folder)")
    parser.add_argument("--series-uid", help="DICOM series to read when the folder holds several")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--mask", help="tumour mask (binary, any grid in the image's physical space)")
    source.add_argument(
        "--seed-ras",
        type=_point,
        metavar="X,Y,Z",
        help="a click inside the lesion, RAS mm (Slicer); --seed-ras=-12,3,40 for a negative x",
    )
    source.add_argument(
        "--seed-lps", type=_point, metavar="X,Y,Z", help="a click inside the lesion, LPS mm (ITK)"
    )
    box = parser.add_mutually_exclusive_group()
    box.add_argument(
        "--box-ras",
        type=_point,
        metavar="X1,Y1,Z1,X2,Y2,Z2",
        help="two opposite corners bounding the lesion, RAS mm (with --seed-ras)",
    )
    box.add_argument(
        "--box-lps",
        type=_point,
        metavar="X1,Y1,Z1,X2,Y2,Z2",
        help="two opposite corners bounding the lesion, LPS mm (with --seed-lps)",
    )
    parser.add_argument("--out", required=True, help="output labelmap, e.g. rois.nrrd")
    parser.add_argument(
        "--tumour-out", help="with a seed: where to write the tumour mask (default beside --out)"
    )
    parser.add_argument(
        "--rim-mm", type=float, default=3.0, help="rim width inside the tumour (default 3 mm)"
    )
    parser.add_argument("--peri-mm", type=float, default=5.0, help="peritumoral band width (default 5 mm)")
    parser.add_argument(
        "--all-lesions", action="store_true", help="regions of every lesion, not only the largest"
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeLib.imaging import align_mask_to_image, read_image, validate_image, write_image
    from BreastSubtypeLib.rois import check_widths, compute_rois
    from BreastSubtypeLib.rois.one_click import segment_tumour_from_seed

    check_widths(args.rim_mm, args.peri_mm)
    out = Path(args.out)
    image = read_image(args.image, series_uid=args.series_uid)
    validate_image(image, args.image)
    seed = args.seed_ras or args.seed_lps
    tumour_out = None
    box_corners, box_space = (args.box_ras, "RAS") if args.box_ras else (args.box_lps, "LPS")
    if args.mask:
        if box_corners:
            raise BadInputError(
                f"--box-{box_space.lower()} goes with a seed (--seed-ras or --seed-lps), not with --mask."
            )
        mask = align_mask_to_image(read_image(args.mask, what="mask"), image, args.mask)
        mask_source = args.mask
    else:
        if len(seed) != 3:
            raise BadInputError(f"The seed needs 3 coordinates x,y,z, got {len(seed)}.")
        space = "RAS" if args.seed_ras else "LPS"
        box = None
        if box_corners:
            # Both in one space, so a point is never read in the other convention (x and y flipped).
            if box_space != space:
                raise BadInputError(
                    f"--box-{box_space.lower()} does not match --seed-{space.lower()}: give the box in the "
                    f"seed's space (--box-{space.lower()})."
                )
            if len(box_corners) != 6:
                raise BadInputError(f"The box needs 6 coordinates x1,y1,z1,x2,y2,z2, got {len(box_corners)}.")
            box = (box_corners[:3], box_corners[3:])
        clicked = segment_tumour_from_seed(image, seed, seed_space=space, box=box)
        for warning in clicked.warnings:
            print(f"warning: {warning}")
        print(f"tumour from the seed: {clicked.volume_ml:.2f} mL")
        mask, mask_source = clicked.mask, "tumour from the seed"
        tumour_out = (
            Path(args.tumour_out)
            if args.tumour_out
            else out.with_name(out.name.split(".")[0] + "_tumour" + "".join(out.suffixes))
        )
    result = compute_rois(
        image,
        mask,
        args.rim_mm,
        args.peri_mm,
        lesion="all" if args.all_lesions else "index",
        mask_source=mask_source,
    )
    # Everything is validated and computed: now write.
    if tumour_out is not None:
        write_image(mask, tumour_out)
        print(f"wrote {tumour_out}")
    write_image(result.labelmap, out)
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"rim width used: {result.rim_mm_used:.2f} mm; lesions in the mask: {result.lesion_count}")
    for name in ("core", "rim", "peritumoral", "tumour"):
        print(f"{name:12s} {result.volumes_ml[name]:8.2f} mL")
    print(f"wrote {out}")
    return 0
