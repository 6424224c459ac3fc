"""The shared manifest reader, in the options cohort prediction relies on (training/tests covers the rest)."""

import pytest

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.manifest import read_manifest


def _write(tmp_path, text):
    path = tmp_path / "manifest.csv"
    path.write_text(text)
    return path


def test_paths_are_relative_to_the_csv_and_missing_labels_are_none(tmp_path):
    path = _write(
        tmp_path, "case_id,image,mask,er,pr,her2,ki67,split\nc1,img/a.nrrd,m/a.nrrd,1,,0,12.5,val\n"
    )
    (case,) = read_manifest(path, check_files=False)
    assert case.image == (tmp_path / "img/a.nrrd").resolve()
    assert case.mask == (tmp_path / "m/a.nrrd").resolve()
    assert (case.er, case.pr, case.her2, case.ki67_percent, case.split) == (1, None, 0, 12.5, "val")


def test_cohort_manifest_may_omit_labels(tmp_path):
    path = _write(tmp_path, "case_id,image,mask\nc1,a.nrrd,b.nrrd\n")
    assert read_manifest(path, check_files=False, require_labels=False)[0].er is None
    with pytest.raises(BadInputError, match="er, pr, her2, ki67"):
        read_manifest(path, check_files=False)


@pytest.mark.parametrize(
    "row, problem",
    [
        ("c1,a,b,2,,,,", "er must be 0, 1"),
        ("c1,a,b,,,,101,", "ki67 must be between 0 and 100"),
        ("c1,a,b,,,,,training", "split must be"),
        (",a,b,,,,,", "case_id is empty"),
        ("../x,a,b,,,,,", "not usable as a folder name"),
    ],
)
def test_bad_rows_name_the_row_and_problem(tmp_path, row, problem):
    path = _write(tmp_path, "case_id,image,mask,er,pr,her2,ki67,split\n" + row + "\n")
    with pytest.raises(BadInputError, match=problem) as info:
        read_manifest(path, check_files=False)
    assert "row 2" in str(info.value) and "manifest.csv" in str(info.value)
