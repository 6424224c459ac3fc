"""Radiomics baselines for side-by-side comparison with the network (SPEC §8; the paper's LR 0.755,
SVM 0.746 mean AUC).

PyRadiomics first-order, shape and GLCM features from the same core, rim and peritumoral ROIs the
network sees (the case pipeline of inference, ``BreastSubtypeLib.preprocessing.case``: the same
checks and ROIs for both), each prefixed by its region.
Per case they are cached as JSON (atomic, keyed by files, ROI widths and extraction settings), so a
rerun or a second fold layout costs no extraction. Models, per task and per outer fold (the SAME
folds as the network's cross-validation, ``splits.cross_validation_folds``): median imputation,
standardisation, then logistic regression or an RBF SVM (balanced classes) whose C is chosen by an
inner stratified CV on the fold's training patients only (nested CV: the test fold never tunes);
Ki-67 by ridge regression with its alpha chosen the same way. Figures are computed on the pooled
out-of-fold scores with the evaluation's own metrics (AUC with bootstrap 95 % CI, Ki-67 MAE).

>>> results = run_radiomics_baseline(rows, cross_validation_folds(rows, k=5), "baseline")  # doctest: +SKIP
>>> results["summary"]["lr"]["mean_auc"]  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.errors import BadCasesError, BadInputError
from BreastSubtypeLib.json_data import json_safe
from BreastSubtypeLib.model.config import PreprocessingConfig
from BreastSubtypeLib.preprocessing.case import case_rois, check_case, read_case
from BreastSubtypeLib.progress import ProgressCallback, report, scaled
from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM
from BreastSubtypeLib.tasks import RECEPTORS
from BreastSubtypeTraining.dataset import file_signature
from BreastSubtypeTraining.manifest import ManifestRow
from BreastSubtypeTraining.metrics import bootstrap_auc, regression_metrics, roc_auc
from BreastSubtypeTraining.splits import Fold

FEATURE_CACHE_VERSION = 1
REGION_LABELS = {"core": CORE, "rim": RIM, "peritumoral": PERITUMORAL}
FEATURE_CLASSES = ("firstorder", "shape", "glcm")
# z-score normalised intensities x100, 10-unit bins (0.1 SD): comparable across scanners and series.
RADIOMICS_SETTINGS = {"normalize": True, "normalizeScale": 100, "binWidth": 10, "minimumROIDimensions": 1}
C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
ALPHA_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0)
CLASSIFIERS = ("lr", "svm")


def _extractor():
    try:
        import radiomics
        from radiomics import featureextractor
    except ImportError:
        raise BadInputError(
            "The radiomics baseline needs PyRadiomics, which is not installed: "
            "pip install --no-build-isolation pyradiomics==3.0.1 (or pip install 'breast-subtype-training[radiomics]')."
        ) from None
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(**RADIOMICS_SETTINGS)
    extractor.disableAllFeatures()
    for name in FEATURE_CLASSES:
        extractor.enableFeatureClassByName(name)
    return extractor, radiomics.__version__


def _feature_key(row: ManifestRow, rim_mm: float, peri_mm: float, version: str) -> str:
    description = {
        "version": FEATURE_CACHE_VERSION,
        "pyradiomics": version,
        "image": [str(row.image), file_signature(Path(row.image))],
        "mask": [str(row.mask), file_signature(Path(row.mask))],
        "rim_mm": rim_mm,
        "peri_mm": peri_mm,
        "settings": RADIOMICS_SETTINGS,
        "classes": FEATURE_CLASSES,
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]


def extract_case_features(row: ManifestRow, extractor, *, rim_mm: float, peri_mm: float) -> dict[str, float]:
    """``{region}_{pyradiomics feature name}`` -> value for one case; NaN for a region too small to measure."""
    checked = check_case(read_case(row.image, row.mask))
    rois = case_rois(checked, PreprocessingConfig(rim_mm=rim_mm, peri_mm=peri_mm))
    image = checked.image
    features: dict[str, float] = {}
    for region, label in REGION_LABELS.items():
        try:
            values = extractor.execute(image, rois.labelmap, label=label)
        except ValueError:  # PyRadiomics' answer to an empty or one-voxel region
            values = {}
        for name, value in values.items():
            if name.startswith("original_"):
                features[f"{region}_{name}"] = float(value)
    return features


def extract_features(
    rows: Sequence[ManifestRow],
    cache_dir: str | os.PathLike,
    *,
    rim_mm: float = 3.0,
    peri_mm: float = 5.0,
    progress: ProgressCallback | None = None,
) -> dict[str, dict[str, float]]:
    """case_id -> features, extracted once per case and cached; every bad case named in one error."""
    extractor, version = _extractor()
    cache_dir = Path(cache_dir)
    table: dict[str, dict[str, float]] = {}
    bad: dict[str, str] = {}
    for index, row in enumerate(rows):
        report(progress, index / max(len(rows), 1), f"radiomics {row.case_id}")
        target = cache_dir / f"{row.case_id}.{_feature_key(row, rim_mm, peri_mm, version)}.json"
        if target.is_file():
            table[row.case_id] = json.loads(target.read_text(encoding="utf-8"))
            continue
        try:
            features = extract_case_features(row, extractor, rim_mm=rim_mm, peri_mm=peri_mm)
        except BadInputError as exc:
            bad[row.case_id] = str(exc)
            continue
        safe = json_safe(features)  # NaN is not JSON: kept as null
        write_text_atomic(target, json.dumps(safe, sort_keys=True))
        table[row.case_id] = json.loads(json.dumps(safe))
    report(progress, 1.0, "radiomics features done")
    if bad:
        raise BadCasesError(bad, "no radiomics baseline was computed")
    return table


def _matrix(table: dict[str, dict[str, float]], case_ids: Sequence[str], names: Sequence[str]) -> np.ndarray:
    return np.array(
        [[np.nan if table[c].get(n) is None else table[c][n] for n in names] for c in case_ids], dtype=float
    )


def _classifier(kind: str, y_train: np.ndarray, seed: int, c_grid: Sequence[float]):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    # liblinear: exact and fast at radiomics sizes (hundreds of cases), and free of BLAS threads,
    # which made lbfgs 6x slower on a shared 2-core machine.
    model = (
        LogisticRegression(solver="liblinear", class_weight="balanced", max_iter=5000, random_state=seed)
        if kind == "lr"
        else SVC(kernel="rbf", class_weight="balanced")
    )
    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", model),
        ]
    )
    inner_folds = min(3, int(min((y_train == 0).sum(), (y_train == 1).sum())))
    if inner_folds < 2:  # too few of one class to tune: the default C
        return pipeline
    return GridSearchCV(
        pipeline,
        {"model__C": list(c_grid)},
        cv=StratifiedKFold(inner_folds, shuffle=True, random_state=seed),
        scoring="roc_auc",
        error_score=np.nan,
    )


def _regressor(n_train: int, seed: int):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, KFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", Ridge()),
        ]
    )
    if n_train < 4:
        return pipeline
    return GridSearchCV(
        pipeline,
        {"model__alpha": list(ALPHA_GRID)},
        cv=KFold(min(3, n_train), shuffle=True, random_state=seed),
        scoring="neg_mean_absolute_error",
    )


def _labels(
    rows_by_id: dict[str, ManifestRow], case_ids: Sequence[str], task: str
) -> tuple[list[str], np.ndarray]:
    known = [c for c in case_ids if getattr(rows_by_id[c], task) is not None]
    return known, np.array([float(getattr(rows_by_id[c], task)) for c in known])


def _out_of_fold(
    table, rows_by_id, folds: Sequence[Fold], names, task: str, kind: str, seed: int, c_grid: Sequence[float]
) -> dict:
    """Pooled out-of-fold scores of one model for one task: {case_id: score}, plus per-fold AUCs."""
    scores: dict[str, float] = {}
    fold_aucs = []
    for fold in folds:
        train_ids, y_train = _labels(rows_by_id, [*fold.train, *fold.val], task)
        test_ids, y_test = _labels(rows_by_id, fold.test, task)
        if not test_ids or (kind != "ridge" and len(np.unique(y_train)) < 2):
            continue
        if kind == "ridge":
            if len(train_ids) < 2:
                continue
            model = _regressor(len(train_ids), seed)
        else:
            model = _classifier(kind, y_train, seed + fold.index, c_grid)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tiny inner folds warn about undefined scores; NaN handles them
            model.fit(_matrix(table, train_ids, names), y_train)
            x_test = _matrix(table, test_ids, names)
            predicted = model.predict(x_test) if kind == "ridge" else model.decision_function(x_test)
        if kind == "ridge":
            predicted = np.clip(predicted, 0.0, 100.0)
        else:
            fold_aucs.append(roc_auc(y_test, predicted))
        scores.update(zip(test_ids, (float(v) for v in predicted)))
    return {"scores": scores, "fold_aucs": fold_aucs}


def run_radiomics_baseline(
    rows: Sequence[ManifestRow],
    folds: Sequence[Fold],
    out_dir: str | os.PathLike,
    progress: ProgressCallback | None = None,
    *,
    rim_mm: float = 3.0,
    peri_mm: float = 5.0,
    seed: int = 0,
    n_boot: int = 1000,
    c_grid: Sequence[float] = C_GRID,
) -> dict:
    """Nested-CV radiomics LR and SVM (ER, PR, HER2) and ridge (Ki-67) on ``folds``.

    ``c_grid`` is the inner grid of C (inverse regularisation) for both classifiers.
    Writes ``out_dir/baseline.csv`` (one row per model, task and metric), ``baseline.md`` (the
    comparison table), ``baseline.json`` (everything, with per-fold AUCs) and
    ``baseline_predictions.csv`` (the out-of-fold scores); returns the dict of ``baseline.json``.
    """
    out_dir = Path(out_dir)
    rows_by_id = {row.case_id: row for row in rows}
    unknown = sorted({c for fold in folds for c in (*fold.train, *fold.val, *fold.test)} - set(rows_by_id))
    if unknown:
        raise BadInputError(f"the folds name case(s) not in the manifest: {', '.join(unknown[:5])}.")
    table = extract_features(
        rows,
        out_dir / "radiomics_features",
        rim_mm=rim_mm,
        peri_mm=peri_mm,
        progress=scaled(progress, 0.0, 0.8),
    )
    names = sorted({name for features in table.values() for name in features})
    results: dict = {
        "n_cases": len(rows),
        "n_features": len(names),
        "n_folds": len(folds),
        "feature_classes": list(FEATURE_CLASSES),
        "regions": list(REGION_LABELS),
        "rim_mm": rim_mm,
        "peri_mm": peri_mm,
        "models": {},
    }
    predictions: list[tuple[str, str, str, float]] = []
    jobs = [(kind, task) for kind in CLASSIFIERS for task in RECEPTORS] + [("ridge", "ki67_percent")]
    for step, (kind, task) in enumerate(jobs):
        report(progress, 0.8 + 0.2 * step / len(jobs), f"{kind} {task}")
        oof = _out_of_fold(table, rows_by_id, folds, names, task, kind, seed, c_grid)
        case_ids = list(oof["scores"])
        truth = [float(getattr(rows_by_id[c], task)) for c in case_ids]
        scores = [oof["scores"][c] for c in case_ids]
        if kind == "ridge":
            metrics = regression_metrics(truth, scores)
        else:
            metrics = bootstrap_auc(truth, scores, n_boot=n_boot, seed=seed)
            metrics["fold_auc"] = oof["fold_aucs"]
        results["models"].setdefault(kind, {})[task] = json_safe(metrics)
        predictions += [(c, kind, task, s) for c, s in zip(case_ids, scores)]
    summary = {}
    for kind in CLASSIFIERS:
        aucs = [results["models"][kind][t]["auc"] for t in RECEPTORS]
        finite = [a for a in aucs if a is not None]
        summary[kind] = {"mean_auc": float(np.mean(finite)) if len(finite) == len(aucs) else None}
    summary["ridge"] = {"ki67_mae": results["models"]["ridge"]["ki67_percent"]["mae"]}
    results["summary"] = summary
    _write_outputs(out_dir, results, predictions)
    report(progress, 1.0, "radiomics baseline done")
    return results


def _fmt(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _write_outputs(out_dir: Path, results: dict, predictions: list) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["model", "task", "metric", "value", "ci_low", "ci_high", "n"])
    for kind in CLASSIFIERS:
        for task in RECEPTORS:
            m = results["models"][kind][task]
            writer.writerow(
                [kind, task, "auc", _fmt(m["auc"], 4), _fmt(m["ci_low"], 4), _fmt(m["ci_high"], 4), m["n"]]
            )
    for metric in ("mae", "rmse", "pearson_r"):
        m = results["models"]["ridge"]["ki67_percent"]
        writer.writerow(["ridge", "ki67_percent", metric, _fmt(m[metric], 4), "", "", m["n"]])
    write_text_atomic(out_dir / "baseline.csv", buffer.getvalue())

    lines = [
        "# Radiomics baselines (nested cross-validation)",
        "",
        f"{results['n_cases']} cases, {results['n_folds']} outer folds, {results['n_features']} PyRadiomics features "
        f"({', '.join(results['feature_classes'])}) from core, rim ({results['rim_mm']:g} mm) and peritumoral "
        f"({results['peri_mm']:g} mm) regions. AUC of the pooled out-of-fold scores with bootstrap 95 % CI.",
        "",
        "| model | ER AUC | PR AUC | HER2 AUC | mean AUC |",
        "| --- | --- | --- | --- | --- |",
    ]
    titles = {"lr": "Radiomics logistic regression", "svm": "Radiomics SVM (RBF)"}
    for kind in CLASSIFIERS:
        cells = []
        for task in RECEPTORS:
            m = results["models"][kind][task]
            cells.append(f"{_fmt(m['auc'])} ({_fmt(m['ci_low'], 2)}-{_fmt(m['ci_high'], 2)})")
        lines.append(
            f"| {titles[kind]} | {' | '.join(cells)} | {_fmt(results['summary'][kind]['mean_auc'])} |"
        )
    ridge = results["models"]["ridge"]["ki67_percent"]
    lines += ["", f"Ki-67 ridge regression: MAE {_fmt(ridge['mae'], 1)} points (n = {ridge['n']}).", ""]
    write_text_atomic(out_dir / "baseline.md", "\n".join(lines))
    write_text_atomic(out_dir / "baseline.json", json.dumps(results, indent=2, sort_keys=True))

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["case_id", "model", "task", "out_of_fold_score"])
    writer.writerows([c, k, t, f"{s:.6g}"] for c, k, t, s in predictions)
    write_text_atomic(out_dir / "baseline_predictions.csv", buffer.getvalue())
