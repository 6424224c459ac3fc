"""Patient-level stratified train/val/test splits and k-fold cross-validation."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeTraining.manifest import ManifestRow
from BreastSubtypeTraining.splits import assign_splits, cross_validation_folds, receptor_stratum


def _cohort(n_patients: int = 100, seed: int = 7) -> list[ManifestRow]:
    """Patients with 1-2 cases each and a realistic receptor mix, some labels missing."""
    rng = random.Random(seed)
    rows = []
    for p in range(n_patients):
        er = rng.choices([1, 0, None], [0.65, 0.25, 0.10])[0]
        her2 = rng.choices([0, 1, None], [0.7, 0.2, 0.1])[0]
        for c in range(rng.choice([1, 2])):
            case_id = f"p{p:03d}_c{c}"
            rows.append(
                ManifestRow(
                    case_id,
                    Path(f"{case_id}.nii.gz"),
                    Path(f"{case_id}_m.nii.gz"),
                    er=er,
                    her2=her2,
                    patient_id=f"p{p:03d}",
                )
            )
    return rows


def _split_of_patients(rows):
    split_of: dict[str, set[str]] = {}
    for row in rows:
        split_of.setdefault(row.patient_id, set()).add(row.split)
    return split_of


def test_all_cases_of_a_patient_are_in_one_split():
    split_of = _split_of_patients(assign_splits(_cohort(), seed=3))
    assert all(len(splits) == 1 for splits in split_of.values())


def test_patient_proportions_are_7_1_2_within_one_patient():
    split_of = _split_of_patients(assign_splits(_cohort(100), seed=3))
    counts = Counter(next(iter(s)) for s in split_of.values())
    assert abs(counts["train"] - 70) <= 1 and abs(counts["val"] - 10) <= 1 and abs(counts["test"] - 20) <= 1


def test_each_receptor_stratum_is_split_in_proportion():
    rows = assign_splits(_cohort(200, seed=11), seed=5)
    per_stratum: dict[str, Counter] = {}
    seen = set()
    for row in rows:
        if row.patient_id in seen:
            continue
        seen.add(row.patient_id)
        per_stratum.setdefault(receptor_stratum(row), Counter())[row.split] += 1
    for stratum, counts in per_stratum.items():
        n = sum(counts.values())
        for split, fraction in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
            assert abs(counts[split] - fraction * n) <= 1.0, (stratum, counts)


def test_same_seed_gives_the_same_split_and_another_seed_another():
    rows = _cohort()
    first = [r.split for r in assign_splits(rows, seed=1)]
    assert first == [r.split for r in assign_splits(rows, seed=1)]
    assert first != [r.split for r in assign_splits(rows, seed=2)]


def test_explicit_split_column_is_honoured_and_only_the_rest_is_distributed():
    rows = _cohort(20)
    rows = [r if r.patient_id != "p000" else ManifestRow(**{**r.__dict__, "split": "test"}) for r in rows]
    result = assign_splits(rows, seed=0)
    assert {r.split for r in result if r.patient_id == "p000"} == {"test"}
    counts = Counter(next(iter(s)) for p, s in _split_of_patients(result).items() if p != "p000")
    assert (counts["train"], counts["val"], counts["test"]) == (13, 2, 4)  # 19 patients at 7:1:2


def test_a_patient_in_two_explicit_splits_is_refused():
    a = ManifestRow("a", Path("a"), Path("am"), split="train", patient_id="P")
    b = ManifestRow("b", Path("b"), Path("bm"), split="test", patient_id="P")
    with pytest.raises(BadInputError, match="patient 'P' has cases in both 'train' and 'test'"):
        assign_splits([a, b])


def test_cross_validation_tests_every_patient_exactly_once_with_disjoint_parts():
    rows = _cohort(50)
    folds = cross_validation_folds(rows, k=5, seed=0)
    all_cases = sorted(r.case_id for r in rows)
    assert sorted(c for fold in folds for c in fold.test) == all_cases
    patient = {r.case_id: r.patient_id for r in rows}
    for fold in folds:
        parts = [set(fold.train), set(fold.val), set(fold.test)]
        assert sorted(parts[0] | parts[1] | parts[2]) == all_cases
        patients = [{patient[c] for c in part} for part in parts]
        assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
        assert abs(len(patients[2]) - 10) <= 1 and abs(len(patients[1]) - 4) <= 1


def test_cross_validation_folds_are_stratified_and_deterministic():
    rows = _cohort(100, seed=2)
    folds = cross_validation_folds(rows, k=5, seed=4)
    assert folds == cross_validation_folds(rows, k=5, seed=4)
    stratum_of = {r.patient_id: receptor_stratum(r) for r in rows}
    totals = Counter(stratum_of.values())
    patient = {r.case_id: r.patient_id for r in rows}
    for fold in folds:
        in_test = Counter(stratum_of[p] for p in {patient[c] for c in fold.test})
        for stratum, total in totals.items():
            assert abs(in_test[stratum] - total / 5) <= 1.0


def test_k_larger_than_the_number_of_patients_is_refused():
    with pytest.raises(BadInputError, match="needs 2 <= k <= 3 patients"):
        cross_validation_folds(_cohort(3), k=4)
