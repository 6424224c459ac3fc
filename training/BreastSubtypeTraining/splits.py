"""Patient-level stratified splits (train/val/test, 7:1:2 by default) and k-fold cross-validation.

All cases of a patient land in the same split, so no patient is seen in training and evaluated
again. Patients are stratified on a combined label (ER and HER2 by default; a missing label is a
class of its own) so each split keeps the cohort's receptor mix.

How: patients are ordered stratum by stratum (strata and patients within them shuffled by the
seed) and dealt out in that order, each to the split furthest below its share so far. Every
prefix of the order is split in the requested proportions to within one patient, and so every
stratum (a contiguous stretch of it) to within two; the split is a pure function of rows and seed.

>>> rows = assign_splits(read_manifest("manifest.csv"), seed=0)  # doctest: +SKIP
>>> folds = cross_validation_folds(rows, k=5, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.tasks import RECEPTORS
from BreastSubtypeTraining.manifest import SPLITS, ManifestRow

DEFAULT_FRACTIONS = (0.7, 0.1, 0.2)  # train, val, test (the paper's 7:1:2)


def receptor_stratum(row: ManifestRow) -> str:
    """The default stratum: ER and HER2 status, ``?`` where unknown (e.g. ``ER1/HER2?``)."""

    def status(value: int | None) -> str:
        return "?" if value is None else str(value)

    return f"ER{status(row.er)}/HER2{status(row.her2)}"


def _patients(rows: Sequence[ManifestRow], stratum: Callable[[ManifestRow], str]) -> dict[str, str]:
    """patient_id -> stratum (of the patient's first case by case_id)."""
    strata: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: r.case_id):
        strata.setdefault(row.patient_id, stratum(row))
    return strata


def _stratified_order(patients: dict[str, str], seed: int) -> list[str]:
    rng = random.Random(seed)
    by_stratum: dict[str, list[str]] = {}
    for patient in sorted(patients):
        by_stratum.setdefault(patients[patient], []).append(patient)
    keys = sorted(by_stratum)
    rng.shuffle(keys)
    order: list[str] = []
    for key in keys:
        members = by_stratum[key]
        rng.shuffle(members)
        order.extend(members)
    return order


def _deal(order: Sequence[str], fractions: Sequence[float]) -> dict[str, int]:
    """Give each item, in order, to the bin furthest below its share of the items dealt so far."""
    counts = [0] * len(fractions)
    assignment: dict[str, int] = {}
    for position, item in enumerate(order, start=1):
        best = max(
            range(len(fractions)), key=lambda b: (fractions[b] * position - counts[b], fractions[b], -b)
        )
        counts[best] += 1
        assignment[item] = best
    return assignment


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or any(f < 0 for f in values) or sum(values) <= 0:
        raise BadInputError(
            f"split fractions must be three non-negative numbers (train, val, test), got {fractions}."
        )
    total = sum(values)
    return tuple(f / total for f in values)


def assign_splits(
    rows: Sequence[ManifestRow],
    *,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    stratum: Callable[[ManifestRow], str] = receptor_stratum,
) -> list[ManifestRow]:
    """Rows with ``split`` filled in, patient-level and stratified.

    A manifest's own split column is honoured: patients with an explicit split keep it, and only
    the patients without one are distributed (in ``fractions``). A patient whose cases name two
    different splits is refused.
    """
    fractions = _check_fractions(fractions)
    explicit: dict[str, str] = {}
    for row in rows:
        if row.split is None:
            continue
        previous = explicit.setdefault(row.patient_id, row.split)
        if previous != row.split:
            raise BadInputError(
                f"patient {row.patient_id!r} has cases in both {previous!r} and {row.split!r}; "
                "all cases of a patient must be in one split."
            )
    undecided = {p: s for p, s in _patients(rows, stratum).items() if p not in explicit}
    dealt = _deal(_stratified_order(undecided, seed), fractions)
    split_of = {**{p: SPLITS[b] for p, b in dealt.items()}, **explicit}
    return [dataclasses.replace(row, split=split_of[row.patient_id]) for row in rows]


def training_splits(
    rows: Sequence[ManifestRow], *, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0
) -> dict[str, list[ManifestRow]]:
    """``{"train": rows, "val": rows, "test": rows}`` after ``assign_splits``; a training run needs
    cases to train on and validation cases (for its thresholds and early stopping)."""
    assigned = assign_splits(list(rows), fractions=tuple(fractions), seed=seed)
    splits = {name: [row for row in assigned if row.split == name] for name in SPLITS}
    if not splits["train"]:
        raise BadInputError("the manifest leaves no case for training.")
    if not splits["val"]:
        raise BadInputError(
            "the manifest leaves no case for validation (thresholds and early stopping need some)."
        )
    return splits


def data_summary(splits: Mapping[str, Sequence[ManifestRow]]) -> dict:
    """Counts and label prevalences per split, for the model card (no patient identifiers)."""
    summary = {}
    for name, rows in splits.items():
        entry = {"cases": len(rows), "patients": len({row.patient_id for row in rows})}
        for task in RECEPTORS:
            values = [getattr(row, task) for row in rows if getattr(row, task) is not None]
            entry[f"{task}_positive"] = int(sum(values))
            entry[f"{task}_labelled"] = len(values)
        ki67 = [row.ki67_percent for row in rows if row.ki67_percent is not None]
        entry["ki67_labelled"] = len(ki67)
        entry["ki67_median_percent"] = float(sorted(ki67)[len(ki67) // 2]) if ki67 else None
        summary[name] = entry
    return summary


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold, as case_ids: train on ``train``, stop early on ``val``, report ``test``."""

    index: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def cross_validation_folds(
    rows: Sequence[ManifestRow],
    *,
    k: int = 5,
    seed: int = 0,
    val_fraction: float = 0.1,
    stratum: Callable[[ManifestRow], str] = receptor_stratum,
) -> list[Fold]:
    """Patient-level stratified k-fold CV: every patient is in exactly one fold's test set.

    Within each fold, ``val_fraction`` of the non-test patients (stratified too) are held out for
    early stopping; 0 leaves ``val`` empty. Any split column of the manifest is ignored here.
    """
    patients = _patients(rows, stratum)
    if not 2 <= k <= len(patients):
        raise BadInputError(f"k-fold cross-validation needs 2 <= k <= {len(patients)} patients, got k={k}.")
    if not 0.0 <= val_fraction < 1.0:
        raise BadInputError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    fold_of = _deal(_stratified_order(patients, seed), [1.0 / k] * k)
    folds = []
    for index in range(k):
        rest = {p: s for p, s in patients.items() if fold_of[p] != index}
        inner = _deal(_stratified_order(rest, seed + 1 + index), [1.0 - val_fraction, val_fraction])
        part = {p: ("test" if fold_of[p] == index else ("train", "val")[inner[p]]) for p in patients}
        by_part: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for row in rows:
            by_part[part[row.patient_id]].append(row.case_id)
        folds.append(Fold(index, tuple(by_part["train"]), tuple(by_part["val"]), tuple(by_part["test"])))
    return folds
