"""``breast-subtype predict``: one case (``--image`` with ``--mask`` or ``--rois``) or a cohort (``--manifest``).

``--rois`` takes reviewed core/rim/peritumoral regions (e.g. edited in Slicer) and uses them as they
are; ``--mask`` takes a tumour mask and computes the regions at ``--rim-mm``/``--peri-mm``.
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "ER/PR/HER2 probabilities, Ki-67, subtype and attention maps for one case or a cohort"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("input (one case, or a cohort)")
    source.add_argument("--image", help="post-contrast volume (NIfTI, NRRD, MHA or a DICOM series folder)")
    source.add_argument("--mask", help="tumour mask (any grid in the same physical space)")
    source.add_argument(
        "--rois",
        help="reviewed ROI labelmap used as is instead of --mask (1 core, 2 rim, 3 peritumoral; "
        "any grid in the same physical space)",
    )
    source.add_argument(
        "--manifest", help="cohort manifest CSV (case_id,image,mask,...); writes OUT/predictions.csv"
    )
    parser.add_argument("--out", required=True, help="output folder (a case folder, or the cohort folder)")
    parser.add_argument(
        "--model", default="demo", help="registry id or model package folder/zip (default: demo)"
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    parser.add_argument("--rim-mm", type=float, default=None, help="tumour rim width (default: the model's)")
    parser.add_argument(
        "--peri-mm", type=float, default=None, help="peritumoral band width (default: the model's)"
    )
    parser.add_argument(
        "--no-explain", action="store_true", help="skip Grad-CAM maps (attention maps are kept)"
    )
    parser.add_argument("--scheme", default="st_gallen_2013", choices=("st_gallen_2013", "st_gallen_2011"))
    parser.add_argument(
        "--include-patient-info", action="store_true", help="write DICOM patient tags if present"
    )
    parser.add_argument(
        "--progress-json",
        action="store_true",
        help="print JSON progress lines on stdout (for a parent process)",
    )


def _progress(args):
    from BreastSubtypeLib.progress import TqdmProgress, json_lines_progress

    if args.progress_json:
        return json_lines_progress(), lambda: None
    bar = TqdmProgress("predict")
    return bar, bar.close


def run(args: argparse.Namespace) -> int:
    from BreastSubtypeLib.errors import BadInputError

    single = any(value is not None for value in (args.image, args.mask, args.rois))
    if single == (args.manifest is not None):
        raise BadInputError(
            "Give either --image with --mask or --rois (one case) or --manifest (a cohort), not both or neither."
        )
    if single and (args.image is None or (args.mask is None) == (args.rois is None)):
        raise BadInputError(
            "One case needs --image and exactly one of --mask (tumour) or --rois (ROI labelmap)."
        )
    progress, close = _progress(args)
    try:
        if args.manifest:
            from BreastSubtypeLib.inference.cohort import predict_cohort

            result = predict_cohort(
                args.manifest, args.out, args.model, args.device, rim_mm=args.rim_mm, peri_mm=args.peri_mm,
                explain=not args.no_explain, progress=progress,
            )  # fmt: skip
            done = {"predictions_csv": str(result)}
        else:
            done = _predict_case(args, progress)
    finally:
        close()
    if args.progress_json:
        print(json.dumps({"done": True, **done}), flush=True)
    else:
        for key, value in done.items():
            print(f"{key}: {value}", file=sys.stdout)
    return 0


def _predict_case(args, progress) -> dict:
    from BreastSubtypeLib.imaging.io import read_image
    from BreastSubtypeLib.inference.outputs import check_output_folder, write_case_outputs
    from BreastSubtypeLib.inference.predict import predict
    from BreastSubtypeLib.progress import scaled

    out_dir = check_output_folder(args.out)  # before any work: refuse early, write nothing
    image = read_image(args.image, what="image")
    mask = None if args.mask is None else read_image(args.mask, what="mask")
    rois = None if args.rois is None else read_image(args.rois, what="ROI labelmap")
    prediction = predict(
        image, mask, args.model, args.device, rois=rois, rim_mm=args.rim_mm, peri_mm=args.peri_mm,
        explain=not args.no_explain, scheme=args.scheme, progress=scaled(progress, 0.0, 0.85),
        image_source=args.image, mask_source=str(args.mask), rois_source=str(args.rois),
    )  # fmt: skip
    if progress:
        progress(0.85, "writing outputs")
    summary = write_case_outputs(prediction, out_dir, include_patient_info=args.include_patient_info)
    if progress:
        progress(1.0, "done")
    return {
        "report": str(out_dir / "report.html"),
        "subtype": summary["subtype"]["name"],
        "model": f"{summary['model']['id']} {summary['model']['version']}"
        + (" (demonstration model, not for clinical use)" if summary["model"]["demonstration"] else ""),
    }
