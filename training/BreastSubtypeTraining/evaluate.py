"""Evaluate a network or a model package on manifest cases (SPEC §8).

One place turns network outputs into per-case predictions (``predict_cases``) and predictions into
the reported figures (``compute_metrics``); ``fit``, ``cv``, ``ablate`` and the ``evaluate``
command all call them. For phantom cohorts, ``phantom_ceiling`` reads the generator's truth.csv
and gives the achievable AUC (the true probabilities' AUC) and the Ki-67 noise floor, so a model's
figures can be read against what the data allow.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeTraining import metrics
from BreastSubtypeTraining.losses import CLASSIFICATION_TASKS

PREDICTION_COLUMNS = (
    "case_id", "split", "er", "p_er", "pr", "p_pr", "her2", "p_her2", "ki67_percent",
    "ki67_predicted", "subtype_true", "subtype_predicted",
)  # fmt: skip


def predict_cases(network, loader, device) -> dict[str, np.ndarray | list]:
    """Run ``network`` (eval mode, no gradients) over a DataLoader of dataset items.

    Returns case ids, probabilities per receptor, predicted Ki-67 and the labels (NaN = unknown).
    """
    import torch

    from BreastSubtypeTraining.train import batch_to_device

    network.eval()
    collected: dict[str, list] = {"case_id": []}
    for task in CLASSIFICATION_TASKS:
        collected[f"p_{task}"], collected[task] = [], []
    collected["ki67_predicted"], collected["ki67_percent"] = [], []
    with torch.no_grad():
        for batch in loader:
            image, scalars, labels, known = batch_to_device(batch, device)
            with _autocast(device):
                outputs = network(image, scalars)
            for task in CLASSIFICATION_TASKS:
                collected[f"p_{task}"].append(torch.sigmoid(outputs[task].float()).cpu().numpy())
                collected[task].append(_with_nan(labels[task], known[task]))
            collected["ki67_predicted"].append(outputs["ki67_percent"].float().cpu().numpy())
            collected["ki67_percent"].append(_with_nan(labels["ki67_percent"], known["ki67_percent"]))
            collected["case_id"].extend(batch["case_id"])
    return {
        key: (value if key == "case_id" else np.concatenate(value).astype(float))
        for key, value in collected.items()
    }


def _autocast(device):
    import torch

    # Mixed precision only where it pays and is safe: CUDA. CPU autocast (bfloat16) would make
    # validation figures differ from the float32 inference path.
    return torch.autocast("cuda", dtype=torch.float16, enabled=getattr(device, "type", str(device)) == "cuda")


def _with_nan(values, known) -> np.ndarray:
    values = values.detach().float().cpu().numpy().copy()
    values[~known.detach().cpu().numpy().astype(bool)] = np.nan
    return values


def choose_thresholds(predictions: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Operating threshold per receptor: Youden J on these (validation) predictions, 0.5 if undefined."""
    return {
        task: metrics.youden_threshold(predictions[task], predictions[f"p_{task}"])
        for task in CLASSIFICATION_TASKS
    }


def subtype_names(predictions: Mapping, thresholds: Mapping[str, float], scheme: str) -> tuple[list, list]:
    """True and predicted surrogate subtypes per case (true is None where a needed label is missing)."""
    try:
        from BreastSubtypeLib.subtype import surrogate_subtype
    except ImportError:  # the subtype rules are an optional part of evaluation
        return [None] * len(predictions["case_id"]), [None] * len(predictions["case_id"])

    def call(er, pr, her2, ki67):
        try:
            return surrogate_subtype(bool(er), bool(pr), bool(her2), float(ki67), scheme=scheme).name
        except (TypeError, ValueError):
            return None

    truth, predicted = [], []
    for i in range(len(predictions["case_id"])):
        labels = [predictions[task][i] for task in (*CLASSIFICATION_TASKS, "ki67_percent")]
        truth.append(call(*labels) if all(np.isfinite(labels)) else None)
        calls = [predictions[f"p_{task}"][i] >= thresholds[task] for task in CLASSIFICATION_TASKS]
        predicted.append(call(*calls, predictions["ki67_predicted"][i]))
    return truth, predicted


def compute_metrics(
    predictions: Mapping,
    thresholds: Mapping[str, float],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    scheme: str = "st_gallen_2013",
) -> dict:
    """AUC with bootstrap 95 % CI, sensitivity/specificity at ``thresholds``, Ki-67 errors, ECE,
    subtype confusion matrix."""
    result: dict = {"n_cases": len(predictions["case_id"])}
    for task in CLASSIFICATION_TASKS:
        y, p = predictions[task], predictions[f"p_{task}"]
        entry = metrics.bootstrap_auc(y, p, n_boot=n_boot, seed=seed)
        entry.update(metrics.sensitivity_specificity(y, p, thresholds[task]))
        entry["ece"] = metrics.expected_calibration_error(y, p)
        result[task] = entry
    aucs = [result[task]["auc"] for task in CLASSIFICATION_TASKS if not math.isnan(result[task]["auc"])]
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
        for task in CLASSIFICATION_TASKS:
            label = predictions[task][i]
            row += ["" if not np.isfinite(label) else str(int(label)), fmt(predictions[f"p_{task}"][i])]
        row += [fmt(predictions["ki67_percent"][i], 2), fmt(predictions["ki67_predicted"][i], 2)]
        row += [truth[i] or "", predicted[i] or ""]
        writer.writerow(row)
    return buffer.getvalue()


def read_truth(truth_csv: str | Path) -> dict[str, dict[str, float]]:
    """The phantom generator's truth.csv: case_id -> p_er, p_pr, p_her2, ki67_expected, ..."""
    path = Path(truth_csv)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise BadInputError(f"{path}: phantom truth file cannot be read ({exc}).") from exc
    needed = {"case_id", "p_er", "p_pr", "p_her2", "ki67_expected"}
    if not rows or not needed <= set(rows[0]):
        raise BadInputError(f"{path}: phantom truth file lacks columns {', '.join(sorted(needed))}.")
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
    floor: Ki-67 labels carry irreducible sampling noise around it)."""
    ids = [case_id for case_id in predictions["case_id"] if case_id in truth]
    if not ids:
        return None
    position = {case_id: i for i, case_id in enumerate(predictions["case_id"])}
    rows = [position[case_id] for case_id in ids]
    ceiling: dict = {"n_cases": len(ids)}
    for task in CLASSIFICATION_TASKS:
        labels = predictions[task][rows]
        ceiling[task] = metrics.bootstrap_auc(
            labels, [truth[c][f"p_{task}"] for c in ids], n_boot=n_boot, seed=seed
        )
    aucs = [ceiling[task]["auc"] for task in CLASSIFICATION_TASKS if not math.isnan(ceiling[task]["auc"])]
    ceiling["mean_auc"] = float(np.mean(aucs)) if aucs else math.nan
    ceiling["ki67_percent"] = metrics.regression_metrics(
        predictions["ki67_percent"][rows], [truth[c]["ki67_expected"] for c in ids]
    )
    return ceiling


def write_json(path: str | Path, data) -> Path:
    return write_text_atomic(path, json.dumps(json_safe(data), indent=2) + "\n")


def json_safe(value):
    """JSON has no NaN: undefined figures (e.g. AUC with one class) become null."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def evaluate_predictions(
    predictions: Mapping,
    thresholds: Mapping[str, float],
    out_dir: str | Path,
    *,
    split: str,
    truth: Mapping | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    scheme: str = "st_gallen_2013",
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
        {task: (predictions[task], predictions[f"p_{task}"]) for task in CLASSIFICATION_TASKS},
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
    from BreastSubtypeLib.model.package import load_model_package
    from BreastSubtypeTraining.train import make_dataset, make_loader, resolve_device

    loaded = load_model_package(model)
    ours = loaded.metadata.get("breast_subtype", loaded.metadata)
    thresholds = {task: float(ours.get("thresholds", {}).get(task, 0.5)) for task in CLASSIFICATION_TASKS}
    scheme = ours.get("subtype_scheme", "st_gallen_2013")
    torch_device = resolve_device(device)
    out_dir = Path(out_dir)
    dataset = make_dataset(
        rows, loaded.preprocessing_config, cache_dir or out_dir / "cache", progress=progress
    )
    network = loaded.network.to(torch_device)
    predictions = predict_cases(network, make_loader(dataset, batch_size, shuffle=False), torch_device)
    truth = read_truth(truth_csv) if truth_csv else None
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
