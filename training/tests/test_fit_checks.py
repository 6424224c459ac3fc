"""fit checks every case with predict's checks before it trains, reads a phantom truth file only when
it is one, and never loses trained weights to a failure after training."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import SimpleITK as sitk
from tiny import TINY_YAML, tiny_config

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.inference.predict import predict
from BreastSubtypeLib.manifest import write_manifest
from BreastSubtypeLib.phantom.cohort import TRUTH_COLUMNS
from BreastSubtypeTraining.cli import main
from BreastSubtypeTraining.evaluate import phantom_truth_file
from BreastSubtypeTraining.train import AfterTrainingError, fit


def _bad_rows(rows, tmp_path):
    """Two cases predict refuses: one with an empty tumour mask, one with a constant image."""
    mask = sitk.ReadImage(str(rows[1].mask))
    empty = sitk.Image(mask.GetSize(), mask.GetPixelID())
    empty.CopyInformation(mask)
    sitk.WriteImage(empty, str(tmp_path / "empty_mask.nrrd"))
    image = sitk.ReadImage(str(rows[7].image))
    flat = sitk.Image(image.GetSize(), image.GetPixelID()) + 100
    flat.CopyInformation(image)
    sitk.WriteImage(flat, str(tmp_path / "flat_image.nrrd"))
    bad = list(rows)
    bad[1] = dataclasses.replace(rows[1], mask=tmp_path / "empty_mask.nrrd")
    bad[7] = dataclasses.replace(rows[7], image=tmp_path / "flat_image.nrrd")
    return bad


def _predict_refusal(row) -> str:
    """What predict says about a case (it refuses these before loading any model)."""
    with pytest.raises(BadInputError) as refused:
        predict(
            sitk.ReadImage(str(row.image)), sitk.ReadImage(str(row.mask)), "demo", "cpu",
            image_source=str(row.image), mask_source=str(row.mask),
        )  # fmt: skip
    return str(refused.value)


def test_fit_names_every_bad_case_on_its_own_line_as_predict_does_and_trains_nothing(
    tmp_path, phantom_rows, capsys
):
    rows = _bad_rows(phantom_rows, tmp_path)
    manifest = write_manifest(rows, tmp_path / "manifest.csv")
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    out = tmp_path / "run"
    arguments = [
        "fit",
        "--manifest",
        str(manifest),
        "--out",
        str(out),
        "--config",
        str(tmp_path / "tiny.yaml"),
    ]
    assert main([*arguments, "--device", "cpu"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    prefix = "breast-subtype-train fit: error: "
    assert lines == [
        f"{prefix}case {rows[1].case_id}: {_predict_refusal(rows[1])}",
        f"{prefix}case {rows[7].case_id}: {_predict_refusal(rows[7])}",
        f"{prefix}2 case(s) cannot be used; fix or remove them in the manifest.",
    ]
    assert "empty" in lines[0] and "constant" in lines[1]
    assert not (out / "checkpoints").exists() and not (out / "config.json").exists()


def test_a_foreign_truth_csv_beside_the_manifest_is_ignored_with_a_warning(tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("case_id,image,mask,er,pr,her2,ki67\n")
    (tmp_path / "truth.csv").write_text("case_id,diagnosis\nc1,benign\n")
    with pytest.warns(UserWarning, match="not a phantom truth file"):
        assert phantom_truth_file(manifest) is None
    (tmp_path / "truth.csv").write_text(",".join(TRUTH_COLUMNS) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert phantom_truth_file(manifest) == tmp_path / "truth.csv"
    with pytest.raises(BadInputError, match="not found"):
        phantom_truth_file(manifest, tmp_path / "missing.csv")


def test_an_unreadable_truth_file_given_with_truth_stops_fit_before_training(
    tmp_path, phantom_cohort, capsys
):
    (tmp_path / "tiny.yaml").write_text(TINY_YAML)
    (tmp_path / "other.csv").write_text("case_id,diagnosis\nc1,benign\n")
    out = tmp_path / "run"
    code = main(
        ["fit", "--manifest", str(phantom_cohort), "--out", str(out), "--config", str(tmp_path / "tiny.yaml"),
         "--device", "cpu", "--truth", str(tmp_path / "other.csv")]
    )  # fmt: skip
    assert code == 2
    assert "other.csv: phantom truth file lacks columns" in capsys.readouterr().err
    assert not out.exists()


def test_a_failure_after_training_keeps_the_weights_and_resume_finishes_without_retraining(
    tmp_path, phantom_rows
):
    out = tmp_path / "run"
    blocker = out / "reliability_val.png"
    blocker.mkdir(parents=True)  # the evaluation's plot cannot be written there
    config = tiny_config(epochs=1, bootstrap_samples=20)
    with pytest.raises(AfterTrainingError, match="weights are saved .* --resume"):
        fit(phantom_rows, out, config, device="cpu")
    best = (out / "checkpoints" / "best.safetensors").read_bytes()
    assert not (out / "metrics.json").exists()
    blocker.rmdir()
    result = fit(phantom_rows, out, config, device="cpu", resume=True)
    assert (out / "checkpoints" / "best.safetensors").read_bytes() == best
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert [entry["epoch"] for entry in metrics["history"]] == [1] and result.epochs_run == 1
