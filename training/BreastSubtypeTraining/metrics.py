"""Evaluation metrics in the radiologist's terms (SPEC §8), numpy only.

AUC with a seeded bootstrap 95 % CI, the operating threshold chosen on validation (Youden J),
sensitivity/specificity at that threshold, Ki-67 MAE/RMSE/Pearson in percentage points, expected
calibration error and a reliability plot.

>>> round(roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 2)
0.75
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from BreastSubtypeLib.atomic import atomic_path


def _known(y_true: Sequence, y_score: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Drop cases without a label (None/NaN) or without a score."""
    y = np.asarray([np.nan if v is None else v for v in y_true], dtype=float)
    p = np.asarray([np.nan if v is None else v for v in y_score], dtype=float)
    keep = np.isfinite(y) & np.isfinite(p)
    return y[keep], p[keep]


def roc_auc(y_true: Sequence, y_score: Sequence) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties count one half); NaN with one class only."""
    y, p = _known(y_true, y_score)
    positives = int((y == 1).sum())
    negatives = int((y == 0).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _auc_many(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """AUC of each row of (n_boot, n) label/score arrays, NaN where a row has one class."""
    ranks = np.apply_along_axis(rankdata, 1, p)
    positives = y.sum(axis=1)
    negatives = y.shape[1] - positives
    u = (ranks * y).sum(axis=1) - positives * (positives + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = u / (positives * negatives)
    auc[(positives == 0) | (negatives == 0)] = np.nan
    return auc


def bootstrap_auc(
    y_true: Sequence, y_score: Sequence, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict:
    """AUC with a percentile bootstrap CI over cases (resamples with one class are skipped)."""
    y, p = _known(y_true, y_score)
    point = roc_auc(y, p)
    result = {
        "auc": point,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "n": int(y.size),
        "n_positive": int((y == 1).sum()),
    }
    if math.isnan(point):
        return result
    rng = np.random.default_rng(seed)
    index = rng.integers(0, y.size, size=(n_boot, y.size))
    aucs = _auc_many(y[index], p[index])
    aucs = aucs[np.isfinite(aucs)]
    if aucs.size:
        alpha = (1.0 - level) / 2
        result["ci_low"] = float(np.quantile(aucs, alpha))
        result["ci_high"] = float(np.quantile(aucs, 1.0 - alpha))
    return result


def youden_threshold(y_true: Sequence, y_score: Sequence, default: float = 0.5) -> float:
    """Probability threshold maximising sensitivity + specificity - 1 (ties: the value nearest 0.5).

    Thresholds are taken half-way between consecutive distinct scores so a case never sits exactly
    on the threshold; the call is ``score >= threshold``.
    """
    y, p = _known(y_true, y_score)
    if (y == 1).sum() == 0 or (y == 0).sum() == 0:
        return default
    values = np.unique(p)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    best, best_j = default, -np.inf
    for threshold in candidates:
        positive = p >= threshold
        j = positive[y == 1].mean() + (~positive[y == 0]).mean() - 1.0
        if j > best_j + 1e-12 or (abs(j - best_j) <= 1e-12 and abs(threshold - 0.5) < abs(best - 0.5)):
            best, best_j = float(threshold), j
    return float(min(max(best, 0.0), 1.0))


def sensitivity_specificity(y_true: Sequence, y_score: Sequence, threshold: float) -> dict:
    y, p = _known(y_true, y_score)
    positive = p >= threshold
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    return {
        "threshold": float(threshold),
        "sensitivity": float(positive[y == 1].mean()) if n_pos else math.nan,
        "specificity": float((~positive[y == 0]).mean()) if n_neg else math.nan,
        "accuracy": float((positive == (y == 1)).mean()) if y.size else math.nan,
    }


def regression_metrics(true_percent: Sequence, predicted_percent: Sequence) -> dict:
    """Ki-67 errors in percentage points; Pearson r is NaN when either side is constant."""
    t, p = _known(true_percent, predicted_percent)
    if t.size == 0:
        return {"mae": math.nan, "rmse": math.nan, "pearson_r": math.nan, "n": 0}
    error = p - t
    r = math.nan
    if t.size > 1 and t.std() > 0 and p.std() > 0:
        r = float(np.corrcoef(t, p)[0, 1])
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "pearson_r": r,
        "n": int(t.size),
    }


def calibration_bins(y_true: Sequence, y_prob: Sequence, n_bins: int = 10) -> list[dict]:
    """Equal-width probability bins: count, mean predicted probability, observed positive rate."""
    y, p = _known(y_true, y_prob)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        members = which == b
        count = int(members.sum())
        bins.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "count": count,
                "mean_probability": float(p[members].mean()) if count else math.nan,
                "observed_rate": float(y[members].mean()) if count else math.nan,
            }
        )
    return bins


def expected_calibration_error(y_true: Sequence, y_prob: Sequence, n_bins: int = 10) -> float:
    """ECE = sum over bins of (cases in bin / all cases) * |observed rate - mean probability|."""
    bins = calibration_bins(y_true, y_prob, n_bins)
    total = sum(b["count"] for b in bins)
    if total == 0:
        return math.nan
    return float(
        sum(b["count"] / total * abs(b["observed_rate"] - b["mean_probability"]) for b in bins if b["count"])
    )


def reliability_plot(
    curves: dict[str, tuple[Sequence, Sequence]], path: str | Path, n_bins: int = 10
) -> Path:
    """One reliability diagram (observed rate vs mean predicted probability) per task, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    axes.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="perfect calibration")
    for name, (y_true, y_prob) in curves.items():
        bins = [b for b in calibration_bins(y_true, y_prob, n_bins) if b["count"]]
        if not bins:
            continue
        ece = expected_calibration_error(y_true, y_prob, n_bins)
        axes.plot(
            [b["mean_probability"] for b in bins],
            [b["observed_rate"] for b in bins],
            marker="o",
            label=f"{name.upper()} (ECE {ece:.3f})",
        )
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("predicted probability")
    axes.set_ylabel("observed fraction positive")
    axes.set_title("Reliability")
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return Path(path)


def confusion_matrix(true_names: Sequence[str | None], predicted_names: Sequence[str], labels: Sequence[str]):
    """Rows: true class, columns: predicted class; cases without a true class are skipped."""
    position = {name: i for i, name in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for true_name, predicted_name in zip(true_names, predicted_names):
        if true_name is None or true_name not in position or predicted_name not in position:
            continue
        matrix[position[true_name], position[predicted_name]] += 1
    return matrix
