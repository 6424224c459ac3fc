import json
from pathlib import Path

import pytest
import torch
from tiny import tiny_config

from BreastSubtypeLib.model.config import SCALAR_FEATURES
from BreastSubtypeTraining.export import export_run
from BreastSubtypeTraining.train import fit


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory, phantom_rows):
    out = tmp_path_factory.mktemp("export_run")
    fit(phantom_rows, out, tiny_config(epochs=1), device="cpu")
    return out


def test_export_then_load_gives_identical_outputs(one_epoch_run, tmp_path):
    from safetensors.torch import load_file

    from BreastSubtypeLib.model.config import NetworkConfig
    from BreastSubtypeLib.model.network import SpatialMultiTaskNet
    from BreastSubtypeLib.model.package import load_model_package

    package = export_run(
        one_epoch_run, tmp_path / "pkg", model_id="tiny", version="9.9.9", reproduce="make it"
    )
    loaded = load_model_package(package)
    config = json.loads((one_epoch_run / "config.json").read_text(encoding="utf-8"))
    reference = SpatialMultiTaskNet(NetworkConfig.from_dict(config["network"]))
    tensors = load_file(str(one_epoch_run / "checkpoints" / "best.safetensors"))
    reference.load_state_dict(
        {k[len("network.") :]: v for k, v in tensors.items() if k.startswith("network.")}
    )
    reference.eval()
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 4, 32, 32, 32, generator=generator)
    scalars = torch.rand(2, len(SCALAR_FEATURES), generator=generator)
    with torch.no_grad():
        expected = reference(image, scalars)
        actual = loaded.network(image, scalars)
    for key in ("er", "pr", "her2", "ki67_percent", "roi_weights", "attention_fused"):
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)
    assert loaded.preprocessing_config.crop_size_voxels == (32, 32, 32)


def test_package_metadata_carries_thresholds_metrics_and_card(one_epoch_run, tmp_path):
    from BreastSubtypeLib.model.package import load_model_package

    package = export_run(
        one_epoch_run,
        tmp_path / "pkg",
        model_id="tiny",
        version="9.9.9",
        reproduce="make it",
        card_extra_markdown="## External phantoms\n\nAUC 0.5",
    )
    ours = load_model_package(package).metadata
    ours = ours.get("breast_subtype", ours)
    run_metrics = json.loads((one_epoch_run / "metrics.json").read_text(encoding="utf-8"))
    assert ours["id"] == "tiny" and ours["demonstration"] is True
    assert ours["thresholds"] == pytest.approx(run_metrics["thresholds"])
    assert ours["metrics"]["val"]["er"]["threshold"] == pytest.approx(run_metrics["thresholds"]["er"])
    card = (package / "docs" / "README.md").read_text(encoding="utf-8")
    assert "DEMONSTRATION MODEL" in card and "make it" in card and "| ER |" in card
    assert card.index("## External phantoms") < card.index("## Changelog")
    # The default recipe's training and support, in the card's words and in the metadata
    penalty = {"ki67": 10.0, "er": 1.0, "pr": 1.0, "her2": 1.0}
    assert ours["training"]["ki67_loss"] == "log" and ours["training"]["deep_penalty"] == penalty
    assert "a Huber loss on log(1 + Ki-67 %) for Ki-67 (missing labels contribute nothing); the deep " in card
    assert "penalty on its variance across each batch (Ki-67 10, ER 1, PR 1, HER2 1: the larger" in card
    assert "The network reads only tissue within 10 mm of these regions" in card
    assert "It reads `tumour_local_texture` and `tumour_profile_texture` on a log scale." in card
    assert ours["training"]["linear_lr_factor"] == 10.0
    assert (
        "; the linear read of the numbers learns at 10 x the learning rate of the other weights; the linear read's "
        "weights carry an L1 penalty, so each task reads few of the numbers (ER 0.024, PR 0.024, HER2 0.024)."
    ) in card


def test_exporting_the_same_run_twice_gives_the_same_weights_file(one_epoch_run, tmp_path):
    first = export_run(one_epoch_run, tmp_path / "a", model_id="tiny", version="1.0.0")
    second = export_run(one_epoch_run, tmp_path / "b", model_id="tiny", version="1.0.0")
    weights = Path("models") / "model.safetensors"
    assert (first / weights).read_bytes() == (second / weights).read_bytes()


def test_export_of_a_folder_without_run_is_bad_input(tmp_path):
    from BreastSubtypeLib.errors import BadInputError

    with pytest.raises(BadInputError, match="config.json"):
        export_run(tmp_path, tmp_path / "pkg")
