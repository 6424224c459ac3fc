"""``breast-subtype demo``: the whole pipeline offline on a synthetic phantom, in seconds.

phantom → one-click tumour from the known lesion centre → core/rim/peritumoral → prediction with
the built-in demonstration model → case folder with report.html (plus the phantom's image and
tumour mask so the result can be opened in Slicer).
"""

from __future__ import annotations

import argparse
import sys

from BreastSubtypeLib.demo_case import DEMO_SEED
from BreastSubtypeLib.inference.device import DEVICE_CHOICES

HELP = "run phantom -> one-click tumour -> ROIs -> prediction -> report offline (demonstration model)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help=f"phantom seed (default: {DEMO_SEED})")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--model", default="demo", help=argparse.SUPPRESS)  # tests and model developers
    parser.add_argument(
        "--progress-json",
        action="store_true",
        help="print JSON progress lines on stdout (for a parent process)",
    )


def run(args: argparse.Namespace) -> int:
    from BreastSubtypeLib.demo_case import demo_case
    from BreastSubtypeLib.inference.outputs import check_output_folder, write_case_outputs
    from BreastSubtypeLib.inference.predict import predict
    from BreastSubtypeLib.progress import TqdmProgress, json_lines_progress, report, scaled
    from BreastSubtypeLib.rois.one_click import segment_tumour_from_seed

    out_dir = check_output_folder(args.out)
    bar = None if args.progress_json else TqdmProgress("demo")
    progress = json_lines_progress() if args.progress_json else bar
    try:
        report(progress, 0.0, "synthetic phantom")
        case = demo_case(args.seed)
        report(progress, 0.2, "one-click tumour from the lesion centre")
        tumour = segment_tumour_from_seed(case.image, case.lesion_center_lps, seed_space="LPS")
        prediction = predict(
            case.image, tumour.mask, args.model, args.device, progress=scaled(progress, 0.3, 0.85),
            image_source="demo phantom", mask_source="one-click tumour",
        )  # fmt: skip
        prediction.warnings.extend(tumour.warnings)
        report(progress, 0.85, "writing outputs")
        write_case_outputs(
            prediction,
            out_dir,
            extra_images={"phantom_image.nrrd": case.image, "tumour_mask.nrrd": tumour.mask},
        )
        report(progress, 1.0, "done")
    finally:
        if bar is not None:
            bar.close()
    stream = sys.stderr if args.progress_json else sys.stdout
    truth = case.biomarkers
    print(
        f"Demo finished. Report: {out_dir / 'report.html'}\n"
        + (
            "The model is a DEMONSTRATION model trained on synthetic phantoms: not for clinical use.\n"
            if prediction.model["demonstration"]
            else ""
        )
        + f"Predicted subtype: {prediction.subtype['name']}; "
        f"ER {prediction.er['probability']:.2f}, PR {prediction.pr['probability']:.2f}, "
        f"HER2 {prediction.her2['probability']:.2f}, Ki-67 {prediction.ki67_percent:.1f} %.\n"
        f"Phantom truth: ER {'+' if truth.er else '-'}, PR {'+' if truth.pr else '-'}, "
        f"HER2 {'+' if truth.her2 else '-'}, Ki-67 {truth.ki67_percent:.1f} %.",
        file=stream,
    )
    return 0
