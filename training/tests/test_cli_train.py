import json

import pytest
from tiny import TINY_YAML

from BreastSubtypeTraining.cli import main


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def test_missing_manifest_exits_2_with_one_line_naming_it(tmp_path, capsys):
    missing = tmp_path / "nope.csv"
    assert main(["fit", "--manifest", str(missing), "--out", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, "nope.csv")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("text", "named"),
    [("epochs: 0\n", "bad.yaml"), ("network: {log_numbers: [tumour_texture]}\n", "tumour_local_texture")],
)
def test_bad_config_exits_2(tmp_path, capsys, phantom_cohort, text, named):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    out = tmp_path / "r"
    assert main(["fit", "--manifest", str(phantom_cohort), "--out", str(out), "--config", str(config)]) == 2
    _one_line_error(capsys, named, "epochs" if "epochs" in text else "log_numbers")
    assert not out.exists()  # nothing written


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--manifest"])
    assert exit_info.value.code == 2


def test_evaluate_with_missing_model_exits_2(tmp_path, capsys, phantom_cohort):
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(tmp_path / "nomodel"),
                "--manifest",
                str(phantom_cohort),
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 2
    )
    _one_line_error(capsys, "nomodel")


def test_fit_evaluate_export_exit_0(tmp_path, capsys, phantom_cohort):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_YAML)
    run = tmp_path / "run"
    assert (
        main(
            [
                "fit",
                "--manifest",
                str(phantom_cohort),
                "--out",
                str(run),
                "--config",
                str(config),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert "model package" in capsys.readouterr().out
    evaluation = tmp_path / "eval"
    code = main(
        [
            "evaluate",
            "--model",
            str(run / "model"),
            "--manifest",
            str(phantom_cohort),
            "--out",
            str(evaluation),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    result = json.loads((evaluation / "metrics.json").read_text(encoding="utf-8"))
    assert result["n_cases"] == 12
    # The phantom cohort has truth.csv beside its manifest: the ceiling is reported next to the model.
    if (phantom_cohort.parent / "truth.csv").is_file():
        assert result["phantom_ceiling"]["n_cases"] == 12
    # Several models on one cohort share a crop cache: each case is prepared once, same figures.
    shared = tmp_path / "shared_cache"
    for name in ("eval_shared_1", "eval_shared_2"):
        argv = ["evaluate", "--model", str(run / "model"), "--manifest", str(phantom_cohort)]
        assert (
            main([*argv, "--out", str(tmp_path / name), "--device", "cpu", "--cache-dir", str(shared)]) == 0
        )
        if name == "eval_shared_1":
            crops = {path: path.stat().st_mtime_ns for path in shared.rglob("*.npz")}
            assert len(crops) == 12
        assert not (tmp_path / name / "cache").exists()
        shared_result = json.loads((tmp_path / name / "metrics.json").read_text(encoding="utf-8"))
        assert shared_result["er"] == result["er"] and shared_result["ki67_percent"] == result["ki67_percent"]
    assert {path: path.stat().st_mtime_ns for path in shared.rglob("*.npz")} == crops
    history = ["--changelog", "1.1.0: retrained", "--changelog", "1.0.0: first"]
    assert (
        main(
            ["export", "--run", str(run), "--out", str(tmp_path / "pkg"), "--id", "x", "--version", "1.1.0"]
            + history
        )
        == 0
    )
    metadata = json.loads((tmp_path / "pkg" / "configs" / "metadata.json").read_text(encoding="utf-8"))
    # The package keeps its history: one entry per version, as MONAI's bundle schema has it.
    assert metadata["changelog"] == {"1.1.0": "1.1.0: retrained", "1.0.0": "1.0.0: first"}


def test_cv_and_ablate_write_their_tables(tmp_path, capsys, phantom_cohort):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_YAML)
    cache = str(tmp_path / "cache")
    cv_dir = tmp_path / "cv"
    args = [
        "--manifest",
        str(phantom_cohort),
        "--config",
        str(config),
        "--device",
        "cpu",
        "--cache-dir",
        cache,
    ]
    assert main(["cv", "--out", str(cv_dir), "--k", "2", *args]) == 0
    summary = json.loads((cv_dir / "cv_summary.json").read_text(encoding="utf-8"))
    assert summary["folds"] == 2 and len(summary["per_fold"]) == 2
    # Out-of-fold predictions cover every case exactly once.
    tested = [
        line.split(",")[0]
        for f in (0, 1)
        for line in (cv_dir / f"fold_{f}" / "predictions_test.csv")
        .read_text(encoding="utf-8")
        .splitlines()[1:]
    ]
    assert len(tested) == 12 and len(set(tested)) == 12
    ablation_dir = tmp_path / "ablation"
    assert main(["ablate", "--out", str(ablation_dir), "--variants", "full,no_peritumoral", *args]) == 0
    table = (ablation_dir / "ablation.md").read_text(encoding="utf-8")
    assert "`full`" in table and "`no_peritumoral`" in table and "achievable" in table
    header = (ablation_dir / "ablation.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("variant,description,auc_er,ci_low_er,ci_high_er")
    # Both variants were tested on the same cases.
    full = json.loads((ablation_dir / "full" / "config.json").read_text(encoding="utf-8"))["splits"]
    other = json.loads((ablation_dir / "no_peritumoral" / "config.json").read_text(encoding="utf-8"))[
        "splits"
    ]
    assert full == other
    assert main(["ablate", "--out", str(ablation_dir), "--variants", "full,no_such_variant", *args]) == 2
