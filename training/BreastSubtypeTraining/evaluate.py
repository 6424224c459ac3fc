"""Evaluate a network or a model package on manifest cases (SPEC §8).

One place turns network outputs into per-case predictions (``predict_cases``, through the model
runner inference uses) and predictions into the reported figures (``compute_metrics``); ``fit``,
``cv``, ``ablate`` and the ``evaluate`` command all call them. For phantom cohorts,
``phantom_ceiling`` reads the generator's truth.csv and gives the achievable AUC (the true
probabilities' AUC) and the Ki-67 noise floor, so a model's figures can be read against what the
data allow.

>>> thresholds = choose_thresholds({"er": [0, 0, 1, 1], "p_er": [0.1, 0.3, 0.6, 0.9],
...                                 "pr": [0, 1], "p_pr": [0.2, 0.7], "her2": [1], "p_her2": [0.4]})
>>> round(thresholds["er"], 2), thresholds["her2"]  # Youden's J; 0.5 where one class is missing
(0.45, 0.5)
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.inference.device import select_device
from BreastSubtypeLib.inference.runner import ModelRunner, operating_thresholds, probabilities, subtype_scheme
from BreastSubtypeLib.json_data import write_json
from BreastSubtypeLib.model.package import load_model_package
from BreastSubtypeLib.phantom.cohort import TRUTH_COLUMNS
from BreastSubtypeLib.subtype import DEFAULT_SCHEME, subtype_from_probabilities, surrogate_subtype
from BreastSubtypeLib.tasks import KI67_KEY, RECEPTORS
from BreastSubtypeTraining import metrics
from BreastSubtypeTraining.dataset import make_dataset, make_loader

PREDICTION_COLUMNS = (
    "case_id", "split", "er", "p_er", "pr", "p_pr", "her2", "p_her2", "ki67_percent",
    "ki67_predicted", "subtype_true", "subtype_predicted",
)  # fmt: skip
# What the evaluation reads from a phantom truth file (all of them columns the generator writes).
TRUTH_NEEDED = ("case_id", "p_er", "p_pr", "p_her2", "ki67_expected")


def predict_cases(network, loader, device) -> dict[str, np.ndarray | list]:
    """Run ``network`` over a DataLoader of dataset items with the model runner of inference.

    Returns case ids, probabilities per receptor, predicted Ki-67 and the labels (NaN = unknown).
    """
    runner = ModelRunner(network, device, deterministic=False)  # training seeds its own determinism
    collected: dict[str, list] = {"case_id": []}
    for task in RECEPTORS:
        collected[f"p_{task}"], collected[task] = [], []
    collected["ki67_predicted"], collected[KI67_KEY] = [], []
    for batch in loader:
        outputs = runner.outputs(batch["image"], batch["scalars"])
        for task in RECEPTORS:
            collected[f"p_{task}"].append(probabilities(outputs[task]))
            collected[task].append(_with_nan(batch["labels"][task], batch["known"][task]))
        collected["ki67_predicted"].append(outputs[KI67_KEY])
        collected[KI67_KEY].append(_with_nan(batch["labels"][KI67_KEY], batch["known"][KI67_KEY]))
        collected["case_id"].extend(batch["case_id"])
    return {
        key: (value if key == "case_id" else np.concatenate(value).astype(float))
        for key, value in collected.items()
    }


def _with_nan(values, known) -> np.ndarray:
    values = values.detach().float().cpu().numpy().copy()
    values[~known.detach().cpu().numpy().astype(bool)] = np.nan
    return values


def choose_thresholds(predictions: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Operating threshold per receptor: Youden J on these (validation) predictions, 0.5 if undefined."""
    return {task: metrics.youden_threshold(predictions[task], predictions[f"p_{task}"]) for task in RECEPTORS}


def subtype_names(predictions: Mapping, thresholds: Mapping[str, float], scheme: str) -> tuple[list, list]:
    """True and predicted surrogate subtypes per case (None where a needed label or value is missing).

    The predicted one is what ``predict`` reports: the receptor calls at ``thresholds`` and Ki-67.
    """
    truth, predicted = [], []
    for i in range(len(predictions["case_id"])):
        labels = [predictions[task][i] for task in (*RECEPTORS, KI67_KEY)]
        known = all(np.isfinite(labels))
        truth.append(
            surrogate_subtype(*(bool(v) for v in labels[:3]), float(labels[3]), scheme=scheme).name
            if known
            else None
        )
        try:
            predicted.append(
                subtype_from_probabilities(
                    *(predictions[f"p_{task}"][i] for task in RECEPTORS), predictions["ki67_predicted"][i],
                    thresholds=dict(thresholds), scheme=scheme,
                )["name"]
            )  # fmt: skip
        except ValueError:
            predicted.append(None)
    return truth, predicted


def compute_metrics(
    predictions: Mapping,
    thresholds: Mapping[str, float],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    scheme: str = DEFAULT_SCHEME,
) -> dict:
    """AUC with bootstrap 95 % CI, sensitivity/specificity at ``thresholds``, Ki-67 errors, ECE,
    subtype confusion matrix."""
    result: dict = {"n_cases": len(predictions["case_id"])}
    for task in RECEPTORS:
        y, p = predictions[task], predictions[f"p_{task}"]
        entry = metrics.bootstrap_auc(y, p, n_boot=n_boot, seed=seed)
        entry.update(metrics.sensitivity_specificity(y, p, thresholds[task]))
        entry["ece"] = metrics.expected_calibration_error(y, p)
        result[task] = entry
    aucs = [result[task]["auc"] for task in RECEPTORS if not math.isnan(result[task]["auc"])]
    result["mean_auc"] = float(np.mean(aucs)) if aucs else math.nan
    result["ki67_percent"] = metrics.regression_metrics(
        predictions["ki67_percent"], predictions["ki67_predicted"]
    )
    truth, predicted = subtype_names(predictions, thresholds, scheme)
    names = sorted({name for name in (*truth, *predicted) if name})
    matrix = metrics.confusion_matrix(truth, predicted, names)
    result["subtype"] = {"scheme": scheme, "labels": names, "confusion_matrix": matrix.tolist()}
    return result


def predictions_csv(predictions: Mapping, split: str, thresholds: Mapping[str, float], scheme: str) -> str:
    truth, predicted = subtype_names(predictions, thresholds, scheme)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PREDICTION_COLUMNS)

    def fmt(value, digits=4):
        return "" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"

    for i, case_id in enumerate(predictions["case_id"]):
        row = [case_id, split]
        for task in RECEPTORS:
            label = predictions[task][i]
            row += ["" if not np.isfinite(label) else str(int(label)), fmt(predictions[f"p_{task}"][i])]
        row += [fmt(predictions["ki67_percent"][i], 2), fmt(predictions["ki67_predicted"][i], 2)]
        row += [truth[i] or "", predicted[i] or ""]
        writer.writerow(row)
    return buffer.getvalue()


def phantom_truth_file(manifest_csv: str | Path, explicit: str | Path | None = None) -> Path | None:
    """The phantom truth file of a cohort, or None.

    ``explicit`` (``--truth FILE``) must exist. Otherwise a ``truth.csv`` beside the manifest is used
    only when it has the phantom generator's columns (``TRUTH_COLUMNS``); any other truth.csv is
    someone else's file: it is ignored, with a warning, and never read.
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise BadInputError(f"{path}: phantom truth file not found.")
        return path
    beside = Path(manifest_csv).parent / "truth.csv"
    if not beside.is_file():
        return None
    missing = [column for column in TRUTH_COLUMNS if column not in _header(beside)]
    if missing:
        warnings.warn(
            f"{beside} is not a phantom truth file (it lacks {', '.join(missing)}); ignored. "
            "Give --truth FILE to use a phantom generator's truth file.",
            stacklevel=2,
        )
        return None
    return beside


def _header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def read_truth(truth_csv: str | Path) -> dict[str, dict[str, float]]:
    """The phantom generator's truth.csv: case_id -> p_er, p_pr, p_her2, ki67_expected, ..."""
    path = Path(truth_csv)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInputError(f"{path}: phantom truth file cannot be read ({exc}).") from exc
    if not rows or not set(TRUTH_NEEDED) <= set(rows[0]):
        raise BadInputError(f"{path}: phantom truth file lacks columns {', '.join(sorted(TRUTH_NEEDED))}.")
    return {
        row["case_id"]: {k: float(v) for k, v in row.items() if k != "case_id" and _is_number(v)}
        for row in rows
    }


def _is_number(text: str) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def phantom_ceiling(
    predictions: Mapping, truth: Mapping[str, Mapping[str, float]], *, n_boot: int = 1000, seed: int = 0
):
    """What a perfect model could reach on these cases: the AUC of the generator's true
    probabilities against the sampled labels, and the Ki-67 MAE of its expected value (the noise
    floor: Ki-67 labels carry irreducible sampling noise around it). Beside it, the model's own
    Ki-67 error against that expected value on every case, labelled or not
    (``ki67_against_expected``): free of label noise and on twice the cases, so it separates two
    recipes where the label MAE of a few dozen labelled cases cannot (training/EVALUATION.md)."""
    ids = [case_id for case_id in predictions["case_id"] if case_id in truth]
    if not ids:
        return None
    position = {case_id: i for i, case_id in enumerate(predictions["case_id"])}
    rows = [position[case_id] for case_id in ids]
    ceiling: dict = {"n_cases": len(ids)}
    for task in RECEPTORS:
        labels = predictions[task][rows]
        ceiling[task] = metrics.bootstrap_auc(
            labels, [truth[c][f"p_{task}"] for c in ids], n_boot=n_boot, seed=seed
        )
    aucs = [ceiling[task]["auc"] for task in RECEPTORS if not math.isnan(ceiling[task]["auc"])]
    ceiling["mean_auc"] = float(np.mean(aucs)) if aucs else math.nan
    expected = [truth[c]["ki67_expected"] for c in ids]
    ceiling["ki67_percent"] = metrics.regression_metrics(predictions["ki67_percent"][rows], expected)
    if "ki67_predicted" in predictions:
        ceiling["ki67_against_expected"] = metrics.regression_metrics(
            expected, np.asarray(predictions["ki67_predicted"], dtype=float)[rows]
        )
    return ceiling


def evaluate_predictions(
    predictions: Mapping,
    thresholds: Mapping[str, float],
    out_dir: str | Path,
    *,
    split: str,
    truth: Mapping | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    scheme: str = DEFAULT_SCHEME,
) -> dict:
    """Figures of one split, with its predictions CSV and reliability plot written into ``out_dir``."""
    out_dir = Path(out_dir)
    result = compute_metrics(predictions, thresholds, n_boot=n_boot, seed=seed, scheme=scheme)
    if truth:
        result["phantom_ceiling"] = phantom_ceiling(predictions, truth, n_boot=n_boot, seed=seed)
    write_text_atomic(
        out_dir / f"predictions_{split}.csv", predictions_csv(predictions, split, thresholds, scheme)
    )
    metrics.reliability_plot(
        {task: (predictions[task], predictions[f"p_{task}"]) for task in RECEPTORS},
        out_dir / f"reliability_{split}.png",
    )
    return result


def evaluate_model(
    model: str | Path,
    rows: Sequence,
    out_dir: str | Path,
    *,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    truth_csv: str | Path | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    batch_size: int = 8,
    progress=None,
) -> dict:
    """Evaluate a model package on manifest rows at the package's own thresholds; writes
    ``out_dir/metrics.json``, ``predictions_all.csv`` and ``reliability_all.png``."""
    loaded = load_model_package(model)
    select_device(device)  # an absent GPU is refused before any case is prepared
    truth = read_truth(truth_csv) if truth_csv else None
    thresholds = operating_thresholds(loaded)
    scheme = subtype_scheme(loaded)
    out_dir = Path(out_dir)
    dataset = make_dataset(
        rows, loaded.preprocessing_config, cache_dir or out_dir / "cache", progress=progress
    )
    predictions = predict_cases(loaded.network, make_loader(dataset, batch_size, shuffle=False), device)
    result = evaluate_predictions(
        predictions, thresholds, out_dir, split="all", truth=truth, n_boot=n_boot, seed=seed, scheme=scheme
    )
    result["model"] = {
        "path": str(loaded.path),
        "thresholds": thresholds,
        "weights_sha256": loaded.weights_sha256,
    }
    write_json(out_dir / "metrics.json", result)
    return result
