"""``breast-subtype predict``: one case (``--image`` with ``--mask`` or ``--rois``) or a cohort (``--manifest``).

``--rois`` takes reviewed core/rim/peritumoral regions (e.g. edited in Slicer) and uses them as they
are; ``--mask`` takes a tumour mask and computes the regions at ``--rim-mm``/``--peri-mm``.
A cohort can be split over processes (``--workers``) and over machines (``--shard I/N``, one job
array task per shard; ``breast-subtype merge`` joins the shards).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys

from BreastSubtypeLib.inference.device import DEVICE_CHOICES
from BreastSubtypeLib.subtype import DEFAULT_SCHEME, SCHEMES

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
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--rim-mm", type=float, default=None, help="tumour rim width (default: the model's)")
    parser.add_argument(
        "--peri-mm", type=float, default=None, help="peritumoral band width (default: the model's)"
    )
    parser.add_argument(
        "--no-explain", action="store_true", help="skip Grad-CAM maps (attention maps are kept)"
    )
    parser.add_argument(
        "--scheme", default=DEFAULT_SCHEME, choices=tuple(SCHEMES), help="surrogate subtype scheme"
    )
    parser.add_argument(
        "--include-patient-info",
        action="store_true",
        help="write the DICOM patient name, ID and birth date to prediction.json (never written otherwise)",
    )
    cohort = parser.add_argument_group("cohort (--manifest only)")
    cohort.add_argument(
        "--shard",
        metavar="I/N",
        help="predict only shard I of N (0 <= I < N; cases split by a stable hash of case_id) into "
        "OUT/shard-I-of-N/; one job array task per shard, then `breast-subtype merge`",
    )
    cohort.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the cases, each with an equal share of the cores (default: 1)",
    )
    parser.add_argument(
        "--progress-json",
        action="store_true",
        help="print JSON progress lines on stdout (for a parent process)",
    )


def _progress(args):
    from BreastSubtypeLib.progress import json_lines_progress

    if args.progress_json:
        return json_lines_progress(), lambda: None
    if not sys.stderr.isatty():  # the bar would be hidden anyway; don't pay for importing tqdm
        return None, lambda: None
    from BreastSubtypeLib.progress import TqdmProgress

    bar = TqdmProgress("predict")
    return bar, bar.close


def _check_arguments(args) -> None:
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
    if single and (args.shard is not None or args.workers != 1):
        raise BadInputError("--shard and --workers split a cohort; they need --manifest.")
    if args.workers < 1:
        raise BadInputError(f"--workers must be at least 1, got {args.workers}.")


def run(args: argparse.Namespace) -> int:
    _check_arguments(args)
    progress, close = _progress(args)
    try:
        if args.manifest:
            from BreastSubtypeLib.inference.cohort import parse_shard, predict_cohort

            result = predict_cohort(
                args.manifest, args.out, args.model, args.device, rim_mm=args.rim_mm, peri_mm=args.peri_mm,
                explain=not args.no_explain, scheme=args.scheme, include_patient_info=args.include_patient_info,
                shard=None if args.shard is None else parse_shard(args.shard), workers=args.workers,
                progress=progress,
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
    from BreastSubtypeLib.inference.background import in_background
    from BreastSubtypeLib.inference.outputs import check_output_folder, write_case_outputs
    from BreastSubtypeLib.inference.predict import load_model, predict
    from BreastSubtypeLib.progress import scaled

    out_dir = check_output_folder(args.out)  # before any work: refuse early, write nothing
    # torch and the weights load (≈1.1 s) while SimpleITK, which releases the GIL, reads the case.
    model = in_background(load_model, args.model, name="model-loader")
    image = read_image(args.image, what="image")
    mask = None if args.mask is None else read_image(args.mask, what="mask")
    rois = None if args.rois is None else read_image(args.rois, what="ROI labelmap")
    # The case pipeline's own imports (scipy) are paid now, while the model thread is still busy.
    import BreastSubtypeLib.preprocessing.case  # noqa: F401

    patient_info = None
    if args.include_patient_info:
        from BreastSubtypeLib.inference.patient_info import read_patient_info

        patient_info = read_patient_info(args.image)
    loaded = model.result()
    # torch's hundred thousand objects live until exit: out of the garbage collector's sight, the
    # interpreter's final collection no longer walks them (0.3-1 s at exit on the 2-core machine).
    gc.freeze()
    prediction = predict(
        image, mask, loaded, args.device, rois=rois, rim_mm=args.rim_mm, peri_mm=args.peri_mm,
        explain=not args.no_explain, scheme=args.scheme, progress=scaled(progress, 0.0, 0.85),
        image_source=args.image, mask_source=str(args.mask), rois_source=str(args.rois),
    )  # fmt: skip
    if progress:
        progress(0.85, "writing outputs")
    summary = write_case_outputs(prediction, out_dir, patient_info=patient_info)
    if progress:
        progress(1.0, "done")
    return {
        "report": str(out_dir / "report.html"),
        "subtype": summary["subtype"]["name"],
        "model": f"{summary['model']['id']} {summary['model']['version']}"
        + (" (demonstration model, not for clinical use)" if summary["model"]["demonstration"] else ""),
    }
