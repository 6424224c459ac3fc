import json

import numpy as np
import pytest
import torch
from tiny import tiny_config

from BreastSubtypeTraining.config import load_training_config
from BreastSubtypeTraining.export import export_run
from BreastSubtypeTraining.train import fit, learning_rate_factor


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, phantom_rows):
    out = tmp_path_factory.mktemp("tiny_run")
    result = fit(phantom_rows, out, tiny_config(cache_dir=str(out.parent / "shared_cache")), device="cpu")
    export_run(out, out / "model")
    return out, result


def test_fit_writes_run_folder_and_loadable_package(tiny_run):
    from BreastSubtypeLib.model.package import load_model_package

    out, result = tiny_run
    for name in ("config.json", "metrics.json", "predictions_val.csv", "checkpoints/best.safetensors"):
        assert (out / name).is_file(), name
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["epochs_run"] == 2 and 1 <= metrics["best_epoch"] <= 2
    assert set(metrics["thresholds"]) == {"er", "pr", "her2"}
    loaded = load_model_package(out / "model")
    ours = loaded.metadata.get("breast_subtype", loaded.metadata)
    assert ours["demonstration"] is True
    assert ours["thresholds"] == pytest.approx(metrics["thresholds"])
    card = (out / "model" / "docs" / "README.md").read_text(encoding="utf-8")
    assert "NOT FOR CLINICAL USE" in card


def test_predictions_csv_lists_every_validation_case_with_probabilities(tiny_run):
    out, _ = tiny_run
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    lines = (out / "predictions_val.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("case_id,split,er,p_er")
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(config["splits"]["val"])
    probabilities = np.array([float(line.split(",")[3]) for line in lines[1:]])
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


def test_resume_continues_at_the_next_epoch_and_matches_uninterrupted_run(tmp_path, phantom_rows, tiny_run):
    from safetensors.torch import load_file

    full_dir, _ = tiny_run
    cache = str(full_dir.parent / "shared_cache")
    part = tmp_path / "part"

    def interrupt_after_first_epoch(fraction, stage):
        if stage == "epoch 1/2":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(
            phantom_rows,
            part,
            tiny_config(cache_dir=cache),
            device="cpu",
            progress=interrupt_after_first_epoch,
        )
    assert json.loads((part / "checkpoints" / "state.json").read_text(encoding="utf-8"))["epoch"] == 1
    with pytest.raises(Exception, match="already holds a training run"):
        fit(phantom_rows, part, tiny_config(cache_dir=cache), device="cpu")
    second = fit(phantom_rows, part, tiny_config(cache_dir=cache), device="cpu", resume=True)
    state = json.loads((part / "checkpoints" / "state.json").read_text(encoding="utf-8"))
    assert second.epochs_run == 2 and [h["epoch"] for h in state["history"]] == [1, 2]
    # Same seed per epoch and the same step-based schedule: resumed weights equal uninterrupted ones.
    resumed = load_file(str(part / "checkpoints" / "last.safetensors"))
    straight = load_file(str(full_dir / "checkpoints" / "last.safetensors"))
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=1e-4, atol=1e-5)


def test_learning_rate_warms_up_then_anneals():
    config = tiny_config(epochs=10, warmup_fraction=0.1)
    factors = [learning_rate_factor(step, 100, config) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:])) and factors[-1] < 0.05


def test_config_yaml_is_validated(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nlearnig_rate: 0.1\n")
    with pytest.raises(Exception, match="unknown setting"):
        load_training_config(path)
    path.write_text("epochs: 3\n")
    assert load_training_config(path, epochs=5).epochs == 5


def test_resume_with_other_settings_is_refused(tiny_run, phantom_rows):
    from BreastSubtypeLib.errors import BadInputError

    out, _ = tiny_run
    with pytest.raises(BadInputError, match="learning_rate"):
        fit(phantom_rows, out, tiny_config(learning_rate=0.1), device="cpu", resume=True)


def test_no_best_epoch_and_no_early_stop_before_min_epochs(tmp_path, phantom_rows, tiny_run):
    full_dir, _ = tiny_run
    # Patience 1 would stop after epoch 2 if epoch 1 were best; min_epochs 3 forbids both.
    config = tiny_config(
        epochs=3,
        min_epochs=3,
        early_stopping_patience=1,
        selection="best",
        cache_dir=str(full_dir.parent / "shared_cache"),
    )
    result = fit(phantom_rows, tmp_path / "run", config, device="cpu")
    assert result.epochs_run == 3 and result.best_epoch == 3
    with pytest.raises(Exception, match="min_epochs"):
        tiny_config(epochs=3, min_epochs=4)
