"""Manifest reading, validation (all bad rows at once) and atomic writing."""

from __future__ import annotations

import pytest

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.manifest import ManifestRow, read_manifest, write_manifest

HEADER = "case_id,image,mask,er,pr,her2,ki67"


def _cohort(tmp_path, lines: list[str], header: str = HEADER):
    (tmp_path / "images").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "images" / f"{name}.nii.gz").write_bytes(b"x")
        (tmp_path / "images" / f"{name}_mask.nii.gz").write_bytes(b"x")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return manifest


def test_reads_labels_missing_values_and_resolves_paths_relative_to_the_csv(tmp_path):
    manifest = _cohort(
        tmp_path,
        [
            "a,images/a.nii.gz,images/a_mask.nii.gz,1,0,,23.5,train,P1",
            "b,images/b.nii.gz,images/b_mask.nii.gz,,,1,,,",
        ],
        header=HEADER + ",split,patient_id",
    )
    rows = read_manifest(manifest)
    assert rows[0] == ManifestRow(
        case_id="a",
        image=(tmp_path / "images" / "a.nii.gz").resolve(),
        mask=(tmp_path / "images" / "a_mask.nii.gz").resolve(),
        er=1,
        pr=0,
        her2=None,
        ki67_percent=23.5,
        split="train",
        patient_id="P1",
    )
    assert (rows[1].er, rows[1].pr, rows[1].her2, rows[1].ki67_percent, rows[1].split) == (
        None,
        None,
        1,
        None,
        None,
    )
    assert rows[1].patient_id == "b"  # defaults to the case


def test_extra_columns_are_ignored_and_a_bom_is_accepted(tmp_path):
    manifest = _cohort(tmp_path, ["a,images/a.nii.gz,images/a_mask.nii.gz,1,1,0,5,note"], HEADER + ",comment")
    manifest.write_text("\ufeff" + manifest.read_text(encoding="utf-8"), encoding="utf-8")
    (row,) = read_manifest(manifest)
    assert (row.case_id, row.er, row.ki67_percent) == ("a", 1, 5.0)


def test_every_bad_row_is_reported_in_one_error_naming_the_file(tmp_path):
    manifest = _cohort(
        tmp_path,
        [
            "a,images/a.nii.gz,images/a_mask.nii.gz,1,0,0,10",
            "b,images/b.nii.gz,images/b_mask.nii.gz,pos,0,0,10",
            "c,images/x.nii.gz,images/c_mask.nii.gz,1,0,0,120",
            "a,images/a.nii.gz,images/a_mask.nii.gz,1,0,0,10",
        ],
    )
    with pytest.raises(BadInputError) as caught:
        read_manifest(manifest)
    assert str(caught.value) == (
        "manifest.csv: row 3: er must be 0, 1 or empty, got 'pos'; "
        "row 4: image not found: images/x.nii.gz; ki67 must be between 0 and 100, got '120'; "
        "row 5: duplicate case_id 'a' (first in row 2)."
    )


def test_bad_split_value_is_refused(tmp_path):
    manifest = _cohort(
        tmp_path, ["a,images/a.nii.gz,images/a_mask.nii.gz,1,0,0,10,training"], HEADER + ",split"
    )
    with pytest.raises(BadInputError, match="row 2: split must be train, val, test or empty, got 'training'"):
        read_manifest(manifest)


def test_missing_required_column_is_named(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("case_id,image,mask,er,pr,ki67\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=r"m.csv: missing required column\(s\) her2"):
        read_manifest(manifest)


def test_missing_manifest_file_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")


def test_write_then_read_round_trips_with_relative_paths(tmp_path):
    manifest = _cohort(
        tmp_path,
        [
            "a,images/a.nii.gz,images/a_mask.nii.gz,1,0,,23.5,val,P1",
            "b,images/b.nii.gz,images/b_mask.nii.gz,,,,,,",
        ],
        header=HEADER + ",split,patient_id",
    )
    rows = read_manifest(manifest)
    copy = write_manifest(rows, tmp_path / "copy.csv")
    assert copy.read_text(encoding="utf-8").splitlines() == [
        "case_id,image,mask,er,pr,her2,ki67,split,patient_id",
        "a,images/a.nii.gz,images/a_mask.nii.gz,1,0,,23.5,val,P1",
        "b,images/b.nii.gz,images/b_mask.nii.gz,,,,,,b",
    ]
    assert read_manifest(copy) == rows
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind
