"""Cohort runs: a bad case is marked and the run goes on; a run killed mid-way resumes without
redoing finished cases and without partial files."""

import csv
import os
import signal
import subprocess
import sys
from collections import Counter

import pytest
from predict_helpers import random_model_package, small_case, write_case

from BreastSubtypeLib.inference.cohort import COLUMNS, RUN_LOG, predict_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    model = random_model_package(root / "model")
    lines = ["case_id,image,mask,er,pr,her2,ki67"]
    for index, seed in enumerate((3, 4, 5, 6)):
        image, mask = write_case(small_case(seed), root / "data", f"c{index}")
        lines.append(f"c{index},data/{image.name},data/{mask.name},1,0,,")
        if index == 1:  # a case whose mask file is missing: marked, the run goes on
            lines.append("bad,data/c0_image.nrrd,data/missing_mask.nrrd,,,,")
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, model


def _rows(out_dir):
    with open(out_dir / "predictions.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_bad_case_is_marked_and_the_others_complete(cohort, tmp_path):
    manifest, model = cohort
    out_dir = tmp_path / "run"
    predict_cohort(manifest, out_dir, model, "cpu", explain=False)
    rows = _rows(out_dir)
    assert [row["case_id"] for row in rows] == ["c0", "c1", "bad", "c2", "c3"]
    assert tuple(rows[0]) == COLUMNS
    bad = rows[2]
    assert bad["status"].startswith("error: ") and "missing_mask.nrrd" in bad["status"]
    assert "\n" not in bad["status"] and bad["p_er"] == ""
    for row in rows[:2] + rows[3:]:
        assert row["status"] == "ok" and 0 <= float(row["p_er"]) <= 1 and 0 <= float(row["ki67"]) <= 100
    assert sorted(p.name for p in (out_dir / "cases").iterdir()) == ["c0", "c1", "c2", "c3"]


def test_killed_run_resumes_without_repeats_or_partial_files(cohort, tmp_path):
    manifest, model = cohort
    out_dir = tmp_path / "run"
    command = [sys.executable, "-m", "BreastSubtypeLib.cli.main", "predict", "--manifest", str(manifest),
               "--out", str(out_dir), "--model", str(model), "--device", "cpu", "--progress-json"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in process.stdout:
            if '"case c0' in line:  # the first case is finished and recorded
                os.kill(process.pid, signal.SIGKILL)
                break
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    first = {row["case_id"]: row for row in _rows(out_dir)}
    assert "c0" in first and len(first) < 5  # killed part-way
    finished = {
        case: (out_dir / "cases" / case / "prediction.json").stat().st_mtime_ns
        for case in first
        if case != "bad"
    }

    predict_cohort(manifest, out_dir, model, "cpu")
    rows = _rows(out_dir)
    assert [row["case_id"] for row in rows] == ["c0", "c1", "bad", "c2", "c3"]
    for case, mtime in finished.items():  # not redone
        assert (out_dir / "cases" / case / "prediction.json").stat().st_mtime_ns == mtime
    computed = [line.split("\t")[0] for line in (out_dir / RUN_LOG).read_text().splitlines()]
    repeats = {case for case, count in Counter(computed).items() if count > 1 and case != "bad"}
    assert not repeats
    assert sorted(p.name for p in (out_dir / "cases").iterdir()) == ["c0", "c1", "c2", "c3"]  # no temporaries
    assert sorted(p.name for p in out_dir.iterdir()) == ["cases", "predictions.csv", RUN_LOG]
