"""``breast-subtype-train``: manifest in, model package and figures out (SPEC §8).

Exit status as ``breast-subtype``: 0 success, 2 bad input (one line on stderr naming the problem),
1 internal error, 130 interrupted. torch is imported only by the command that runs, never for
``--help``. Multi-GPU: ``torchrun --nproc_per_node=N -m BreastSubtypeTraining.cli fit ...``.

    breast-subtype-train fit --manifest M.csv --out DIR [--config C.yaml] [--epochs N] [--device auto|cpu|cuda|mps] [--resume]
    breast-subtype-train evaluate --model DIR --manifest M.csv --out DIR
    breast-subtype-train cv --manifest M.csv --out DIR [--k 5]
    breast-subtype-train ablate --manifest M.csv --out DIR [--variants full,no_peritumoral]
    breast-subtype-train baseline --manifest M.csv --out DIR [--k 5]
    breast-subtype-train export --run DIR --out PACKAGE_DIR
    breast-subtype-train convert duke|mamamia ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from BreastSubtypeLib.cli.main import OneLineErrorParser, run_command
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.inference.device import DEVICE_CHOICES

PROG = "breast-subtype-train"
TRUTH_HELP = (
    "phantom generator's truth.csv (default: a truth.csv beside the manifest with the generator's columns)"
)


def _manifest_rows(path: str):
    from BreastSubtypeTraining.manifest import read_manifest

    return read_manifest(path)


def _truth_for(args) -> Path | None:
    """The phantom generator's truth file: ``--truth``, or a generator's truth.csv beside the manifest."""
    from BreastSubtypeTraining.evaluate import phantom_truth_file

    return phantom_truth_file(args.manifest, getattr(args, "truth", None))


def _config(args):
    from BreastSubtypeTraining.config import load_training_config

    return load_training_config(
        args.config,
        epochs=getattr(args, "epochs", None),
        threads=getattr(args, "threads", None),
        cache_dir=getattr(args, "cache_dir", None),
        seed=getattr(args, "seed", None),
    )


def _progress(description: str):
    from BreastSubtypeLib.progress import TqdmProgress

    return TqdmProgress(description)


def run_fit(args) -> int:
    """Train (``train.fit``), then write the package (``export.export_run``) from the saved weights."""
    from BreastSubtypeTraining.export import export_run
    from BreastSubtypeTraining.train import AfterTrainingError, fit

    config = _config(args)
    rows = _manifest_rows(args.manifest)
    result = fit(rows, args.out, config, device=args.device, resume=args.resume, truth_csv=_truth_for(args))
    if not result.metrics:  # a torchrun worker: rank 0 writes the package
        return 0
    package = Path(args.out) / "model"
    try:
        export_run(args.out, package)
    except Exception as exc:
        raise AfterTrainingError(
            f"training finished and its weights and figures are saved in {args.out}, but writing the model "
            f"package failed ({type(exc).__name__}: {exc}); write it with: {PROG} export --run {args.out} "
            f"--out {package}"
        ) from exc
    test = result.metrics.get("test") or result.metrics.get("val", {})
    print(
        f"model package: {package} (best epoch {result.best_epoch} of {result.epochs_run}; "
        f"mean AUC {test.get('mean_auc', float('nan')):.3f}, Ki-67 MAE {test['ki67_percent']['mae']:.1f} points)"
    )
    return 0


def run_evaluate(args) -> int:
    from BreastSubtypeTraining.evaluate import evaluate_model

    bar = _progress("evaluate")
    try:
        result = evaluate_model(
            args.model,
            _manifest_rows(args.manifest),
            args.out,
            device=args.device,
            cache_dir=args.cache_dir,
            truth_csv=_truth_for(args),
            progress=bar,
        )
    finally:
        bar.close()
    figures = ", ".join(
        f"{t.upper()} AUC {result[t]['auc']:.3f}"
        for t in ("er", "pr", "her2")
        if result[t]["auc"] is not None
    )
    print(
        f"{figures}; Ki-67 MAE {result['ki67_percent']['mae']:.1f} points; details in {Path(args.out) / 'metrics.json'}"
    )
    return 0


def run_cv(args) -> int:
    from BreastSubtypeTraining.cv import run_cv as cross_validate

    cross_validate(
        _manifest_rows(args.manifest),
        args.out,
        _config(args),
        k=args.k,
        device=args.device,
        truth_csv=_truth_for(args),
    )
    print((Path(args.out) / "cv.md").read_text(encoding="utf-8"))
    return 0


def run_ablate(args) -> int:
    from BreastSubtypeTraining.ablate import run_ablations

    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    run_ablations(
        _manifest_rows(args.manifest),
        args.out,
        _config(args),
        variants=variants,
        device=args.device,
        truth_csv=_truth_for(args),
    )
    print((Path(args.out) / "ablation.md").read_text(encoding="utf-8"))
    return 0


def run_baseline(args) -> int:
    from BreastSubtypeTraining.baseline import run_radiomics_baseline
    from BreastSubtypeTraining.config import TrainingConfig
    from BreastSubtypeTraining.splits import Fold, cross_validation_folds, training_splits

    rows = _manifest_rows(args.manifest)
    if args.fit_split_seed is None:
        folds = cross_validation_folds(rows, k=args.k, seed=args.seed)
    else:  # the one train/val/test split `fit --seed`-independent runs use: side by side with the network
        splits = training_splits(rows, fractions=TrainingConfig().split_ratios, seed=args.fit_split_seed)
        folds = [Fold(0, *(tuple(row.case_id for row in splits[name]) for name in ("train", "val", "test")))]
    bar = _progress("radiomics baseline")
    try:
        run_radiomics_baseline(
            rows,
            folds,
            Path(args.out),
            progress=bar,
            rim_mm=args.rim_mm,
            peri_mm=args.peri_mm,
            seed=args.seed,
        )
    finally:
        bar.close()
    for name in ("baseline.md",):
        if (Path(args.out) / name).is_file():
            print((Path(args.out) / name).read_text(encoding="utf-8"))
    return 0


def run_export(args) -> int:
    from BreastSubtypeTraining.export import export_run

    changelog = args.changelog or None
    extra = None
    if args.card_extra:
        try:
            extra = Path(args.card_extra).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInputError(f"{args.card_extra}: cannot be read as text ({exc}).") from exc
    out = export_run(
        args.run,
        args.out,
        model_id=args.id,
        version=args.version,
        changelog=changelog,
        reproduce=args.reproduce,
        card_extra_markdown=extra,
        title=args.title,
        demonstration=True if args.demonstration else None,
    )
    print(f"model package: {out}")
    return 0


def run_convert(args) -> int:
    if args.collection == "duke":
        from BreastSubtypeTraining.converters.duke import convert_duke

        if not (args.clinical and args.masks):
            raise BadInputError(
                "convert duke needs --clinical Clinical_and_Other_Features.xlsx and --masks DIR."
            )
        result = convert_duke(args.root, args.clinical, args.masks, args.out)
    else:
        from BreastSubtypeTraining.converters.mamamia import convert_mamamia

        result = convert_mamamia(args.root, args.out)
    print(f"{result.manifest}: {result.n_cases} cases; {len(result.skipped)} patients skipped")
    for patient, why in sorted(result.skipped.items()):
        print(f"  skipped {patient}: {why}")
    return 0


def _training_arguments(parser, *, epochs: bool = True) -> None:
    parser.add_argument(
        "--manifest",
        required=True,
        help="manifest CSV (case_id,image,mask,er,pr,her2,ki67[,split][,patient_id])",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--config", help="training config YAML (see BreastSubtypeTraining/configs/)")
    if epochs:
        parser.add_argument("--epochs", type=int, help="override the config's number of epochs")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="default: auto")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument(
        "--seed", type=int, help="seed of splits, initialisation and augmentation (default: the config's)"
    )
    parser.add_argument("--cache-dir", help="crop cache folder to share between runs (default: OUT/cache)")
    parser.add_argument("--truth", help=TRUTH_HELP)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG, description="Train and evaluate BreastSubtype models from a manifest."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrorParser)

    fit = sub.add_parser("fit", help="train a model and write its package into DIR/model")
    _training_arguments(fit)
    fit.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    fit.set_defaults(_run=run_fit)

    evaluate = sub.add_parser("evaluate", help="evaluate a model package on a manifest")
    evaluate.add_argument("--model", required=True, help="model package folder or zip")
    evaluate.add_argument("--manifest", required=True)
    evaluate.add_argument("--out", required=True)
    evaluate.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    evaluate.add_argument("--truth", help=TRUTH_HELP)
    evaluate.add_argument(
        "--cache-dir",
        help="crop cache folder to share between runs (default: OUT/cache): several models evaluated "
        "on one cohort prepare each case once",
    )
    evaluate.set_defaults(_run=run_evaluate)

    cv = sub.add_parser("cv", help="patient-level stratified k-fold cross-validation")
    _training_arguments(cv)
    cv.add_argument("--k", type=int, default=5)
    cv.set_defaults(_run=run_cv)

    ablate = sub.add_parser("ablate", help="train every ablation variant on the same splits; write the table")
    _training_arguments(ablate)
    ablate.add_argument("--variants", help="comma-separated subset of the ablation variants (default: all)")
    ablate.set_defaults(_run=run_ablate)

    baseline = sub.add_parser("baseline", help="radiomics logistic regression and SVM baselines (nested CV)")
    baseline.add_argument("--manifest", required=True)
    baseline.add_argument("--out", required=True)
    baseline.add_argument("--k", type=int, default=5)
    baseline.add_argument("--seed", type=int, default=0)
    baseline.add_argument(
        "--fit-split-seed",
        type=int,
        help="evaluate on the test split that fit makes with this split_seed (default: k-fold CV)",
    )
    baseline.add_argument("--rim-mm", type=float, default=3.0, help="tumour rim width in mm (default 3)")
    baseline.add_argument(
        "--peri-mm", type=float, default=5.0, help="peritumoral band width in mm (default 5)"
    )
    baseline.set_defaults(_run=run_baseline)

    export = sub.add_parser("export", help="write the model package of a training run")
    export.add_argument("--run", required=True, help="training run folder (written by fit)")
    export.add_argument("--out", required=True, help="package folder to write")
    export.add_argument("--id", help="model id (default: the config's model_id)")
    export.add_argument("--version", help="model version (default: the config's model_version)")
    export.add_argument(
        "--changelog",
        action="append",
        help="a changelog line, newest first (repeat for each earlier version the card keeps)",
    )
    export.add_argument("--reproduce", help="the command that reproduces the model, for the model card")
    export.add_argument(
        "--card-extra", help="markdown file appended to the model card (e.g. further evaluations)"
    )
    export.add_argument("--title", help="model title (default: the config's model_title)")
    export.add_argument(
        "--demonstration",
        action="store_true",
        help="label the package a demonstration model (trained on phantoms, not for clinical use)",
    )
    export.set_defaults(_run=run_export)

    convert = sub.add_parser(
        "convert", help="manifest from a public collection (Duke-Breast-Cancer-MRI, MAMA-MIA)"
    )
    convert.add_argument("collection", choices=("duke", "mamamia"))
    convert.add_argument("--root", required=True, help="the collection's image folder")
    convert.add_argument("--out", required=True, help="manifest CSV to write")
    convert.add_argument("--clinical", help="duke: Clinical_and_Other_Features.xlsx")
    convert.add_argument(
        "--masks", help="duke: folder of tumour masks (MAMA-MIA segmentations of the Duke cases)"
    )
    convert.set_defaults(_run=run_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    return run_command(args, PROG)


if __name__ == "__main__":
    sys.exit(main())
