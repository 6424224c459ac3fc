"""Cohort runs: a bad case is marked and the run goes on; a run killed mid-way resumes without
redoing finished cases and without partial files; shards partition the cohort, resume on their own
and merge into the predictions of one run (or are refused); workers change nothing but the speed."""

import csv
import json
import os
import signal
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import SimpleITK as sitk
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
        # The case's warnings travel with its row, on one line.
        summary = json.loads(
            (out_dir / "cases" / row["case_id"] / "prediction.json").read_text(encoding="utf-8")
        )
        assert row["warnings"] == " | ".join(summary["warnings"]) and "\n" not in row["warnings"]
    assert any(row["warnings"] for row in rows), "no case of the fixture carries a warning"
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
    computed = [line.split("\t")[0] for line in (out_dir / RUN_LOG).read_text(encoding="utf-8").splitlines()]
    repeats = {case for case, count in Counter(computed).items() if count > 1 and case != "bad"}
    assert not repeats
    assert sorted(p.name for p in (out_dir / "cases").iterdir()) == ["c0", "c1", "c2", "c3"]  # no temporaries
    assert sorted(p.name for p in out_dir.iterdir()) == ["cases", "predictions.csv", RUN_LOG]


ALL_CASES = ["c0", "c1", "bad", "c2", "c3"]


def test_shards_partition_any_cohort_exactly_and_stably():
    from BreastSubtypeLib.inference.cohort import shard_of

    ids = [f"case_{n:05d}" for n in range(2000)]
    for count in (1, 2, 3, 10):
        shards = [{case for case in ids if shard_of(case, count) == index} for index in range(count)]
        assert set().union(*shards) == set(ids) and sum(map(len, shards)) == len(ids)  # each case once
        assert min(map(len, shards)) > 0.8 * len(ids) / count  # balanced
    # A case's shard depends on its id only: not on order, nor on the other cases of the manifest.
    assert [shard_of(case, 7) for case in ids[:50]] == [shard_of(case, 7) for case in reversed(ids[:50])][
        ::-1
    ]


@pytest.fixture(scope="module")
def whole_run(cohort, tmp_path_factory):
    manifest, model = cohort
    out_dir = tmp_path_factory.mktemp("whole")
    predict_cohort(manifest, out_dir, model, "cpu", explain=False)
    return (out_dir / "predictions.csv").read_text(encoding="utf-8")


def _run_shards(manifest, model, out_dir, count, indices):
    for index in indices:
        predict_cohort(manifest, out_dir, model, "cpu", explain=False, shard=(index, count))


def test_shards_merge_into_the_predictions_of_one_run(cohort, whole_run, tmp_path, capsys):
    from BreastSubtypeLib.cli.main import main
    from BreastSubtypeLib.inference.cohort import shard_folder

    manifest, model = cohort
    out_dir = tmp_path / "sharded"
    _run_shards(manifest, model, out_dir, 3, range(3))
    per_shard = [{row["case_id"] for row in _rows(shard_folder(out_dir, index, 3))} for index in range(3)]
    assert sorted(case for shard in per_shard for case in shard) == sorted(ALL_CASES)  # a partition
    assert main(["merge", "--manifest", str(manifest), "--out", str(out_dir)]) == 0
    assert (out_dir / "predictions.csv").read_text(encoding="utf-8") == whole_run  # same rows, manifest order
    assert "predictions.csv" in capsys.readouterr().out


def test_a_finished_shard_rerun_redoes_nothing(cohort, tmp_path):
    from BreastSubtypeLib.inference.cohort import shard_folder

    manifest, model = cohort
    out_dir = tmp_path / "sharded"
    _run_shards(manifest, model, out_dir, 2, [0])
    folder = shard_folder(out_dir, 0, 2)
    computed = (folder / RUN_LOG).read_text(encoding="utf-8").splitlines()
    done = {p.name: (p / "prediction.json").stat().st_mtime_ns for p in (folder / "cases").iterdir()}
    _run_shards(manifest, model, out_dir, 2, [0])
    again = (folder / RUN_LOG).read_text(encoding="utf-8").splitlines()[len(computed) :]
    assert all(line.startswith("bad\t") for line in again)  # only the failed case is tried again
    assert {p.name: (p / "prediction.json").stat().st_mtime_ns for p in (folder / "cases").iterdir()} == done


def _merge_refused(manifest, out_dir, capsys):
    from BreastSubtypeLib.cli.main import main

    assert main(["merge", "--manifest", str(manifest), "--out", str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (out_dir / "predictions.csv").exists()
    return err


def test_merge_refuses_missing_and_duplicated_cases(cohort, tmp_path, capsys):
    from BreastSubtypeLib.inference.cohort import shard_folder, shard_of

    manifest, model = cohort
    out_dir = tmp_path / "sharded"
    _run_shards(manifest, model, out_dir, 2, [0])  # shard 1 never ran
    missing = sorted(case for case in ALL_CASES if shard_of(case, 2) == 1)
    assert missing  # the 5 ids do fall in both shards
    err = _merge_refused(manifest, out_dir, capsys)
    assert f"{len(missing)} case(s)" in err and "no row" in err and all(case in err for case in missing)

    _run_shards(manifest, model, out_dir, 2, [1])
    taken = (shard_folder(out_dir, 0, 2) / "predictions.csv").read_text(encoding="utf-8").splitlines()[1]
    with open(shard_folder(out_dir, 1, 2) / "predictions.csv", "a") as handle:
        handle.write(taken + "\n")  # a case predicted in two shards
    err = _merge_refused(manifest, out_dir, capsys)
    assert "1 case(s) have rows in two shards" in err and taken.split(",")[0] in err


def test_merge_refuses_shards_of_different_splits(cohort, tmp_path, capsys):
    manifest, model = cohort
    out_dir = tmp_path / "sharded"
    _run_shards(manifest, model, out_dir, 1, [0])
    _run_shards(manifest, model, out_dir, 2, [0])
    assert "different splits" in _merge_refused(manifest, out_dir, capsys)


def test_workers_and_the_scheme_give_the_same_predictions_as_one_process(cohort, tmp_path):
    import json

    manifest, model = cohort
    runs = {}
    for workers in (1, 2):
        out_dir = tmp_path / f"workers_{workers}"
        predict_cohort(manifest, out_dir, model, "cpu", workers=workers, scheme="st_gallen_2011")
        runs[workers] = out_dir
    assert (runs[1] / "predictions.csv").read_text(encoding="utf-8") == (
        runs[2] / "predictions.csv"
    ).read_text(encoding="utf-8")
    for case in ("c0", "c1", "c2", "c3"):
        one, two = (
            json.loads((runs[n] / "cases" / case / "prediction.json").read_text(encoding="utf-8"))
            for n in (1, 2)
        )
        one.pop("timings_s"), two.pop("timings_s")
        assert one == two and one["subtype"]["scheme"] == "st_gallen_2011"
        for name in one["maps"]["files"].values():
            first, second = (
                sitk.GetArrayFromImage(sitk.ReadImage(str(runs[n] / "cases" / case / name))) for n in (1, 2)
            )
            np.testing.assert_array_equal(first, second)


def test_the_next_case_is_read_while_the_current_one_is_computed():
    import threading

    from BreastSubtypeLib.inference.cohort import _prefetched

    second_read = threading.Event()

    def read(case):
        if case == "second":
            second_read.set()
        return case

    seen = []
    for case, _ in _prefetched(["first", "second", "third"], read):
        if case == "first":  # still working on the first case: the second is being read meanwhile
            assert second_read.wait(timeout=30)
        seen.append(case)
    assert seen == ["first", "second", "third"]


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1", "a/b", "1/0"])
def test_a_shard_outside_its_split_is_refused(text):
    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeLib.inference.cohort import parse_shard

    with pytest.raises(BadInputError, match="--shard must be I/N"):
        parse_shard(text)
