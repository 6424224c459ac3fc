"""Model package: MONAI-bundle layout, safetensors weights verified by SHA-256, JSON configs, no pickle."""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from pathlib import Path

import pytest
import torch

from BreastSubtypeLib.errors import ModelPackageError
from BreastSubtypeLib.model.config import SCALAR_FEATURES, NetworkConfig, PreprocessingConfig
from BreastSubtypeLib.model.network import SpatialMultiTaskNet
from BreastSubtypeLib.model.package import (
    DEMO_MODEL_DIR,
    LoadedModel,
    load_model_package,
    save_model_package,
)

NETWORK_CONFIG = NetworkConfig(widths=(8, 16, 32, 64), attention="single")
PREPROCESSING = PreprocessingConfig(crop_size_voxels=(32, 32, 32), target_spacing_mm=0.9, rim_mm=2.5)
METADATA = {
    "id": "tiny-test",
    "version": "1.2.3",
    "title": "Tiny test model",
    "description": "Randomly initialised network.",
    "authors": ["Test"],
    "thresholds": {"er": 0.4, "pr": 0.5, "her2": 0.3},
    "ki67_cutoff_percent": 20.0,
    "subtype_scheme": "st_gallen_2013",
    "metrics": {"test": {"er": {"auc": 0.5, "ci95": [0.4, 0.6]}}},
    "changelog": ["1.2.3: first"],
    "demonstration": True,
}


def save(folder: Path, seed: int = 0, **overrides) -> tuple[SpatialMultiTaskNet, Path]:
    torch.manual_seed(seed)
    network = SpatialMultiTaskNet(NETWORK_CONFIG).eval()
    save_model_package(
        network,
        NETWORK_CONFIG,
        PREPROCESSING,
        folder,
        metadata={**METADATA, **overrides},
        model_card_markdown="# Tiny test model\n",
        license_text="Apache-2.0\n",
    )
    return network, folder


def inputs(seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 32, 32, 32, generator=generator)
    x[:, 1:] = (x[:, 1:] > 1).float()
    return x, torch.randn(2, len(SCALAR_FEATURES), generator=generator)


def assert_same_outputs(a: torch.nn.Module, b: torch.nn.Module) -> None:
    with torch.no_grad():
        first, second = a(*inputs()), b(*inputs())
    for key in ("er", "pr", "her2", "ki67_percent", "roi_weights", "attention_fused"):
        assert torch.equal(first[key], second[key]), key


def test_save_then_load_gives_identical_outputs_and_configs(tmp_path):
    network, folder = save(tmp_path / "model")
    loaded = load_model_package(folder)
    assert isinstance(loaded, LoadedModel) and loaded.path == folder
    assert loaded.network_config == NETWORK_CONFIG and loaded.preprocessing_config == PREPROCESSING
    assert not loaded.network.training and next(loaded.network.parameters()).device.type == "cpu"
    assert (
        loaded.weights_sha256
        == hashlib.sha256((folder / "models/model.safetensors").read_bytes()).hexdigest()
    )
    assert (
        loaded.metadata["thresholds"] == METADATA["thresholds"] and loaded.metadata["demonstration"] is True
    )
    assert_same_outputs(network, loaded.network)


def test_layout_and_metadata_follow_a_monai_bundle(tmp_path):
    _network, folder = save(tmp_path / "model")
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == ["LICENSE", "configs/metadata.json", "docs/README.md", "models/model.safetensors"]
    bundle = json.loads((folder / "configs/metadata.json").read_text(encoding="utf-8"))
    for key in (
        "version",
        "monai_version",
        "pytorch_version",
        "numpy_version",
        "optional_packages_version",
        "task",
        "description",
        "authors",
        "copyright",
        "network_data_format",
    ):
        assert key in bundle, key
    assert bundle["version"] == "1.2.3" and bundle["changelog"] == {"1.2.3": "1.2.3: first"}
    assert "DEMONSTRATION" in bundle["description"]
    outputs = bundle["network_data_format"]["outputs"]
    assert {"er", "pr", "her2", "ki67_percent"} <= set(outputs)
    assert outputs["ki67_percent"]["value_range"] == [0, 100]
    assert bundle["network_data_format"]["inputs"]["image"]["spatial_shape"] == [32, 32, 32]
    ours = bundle["breast_subtype"]
    assert ours["preprocessing"]["rim_mm"] == 2.5 and ours["network"]["widths"] == [8, 16, 32, 64]
    assert ours["tasks"]["ki67"]["unit"] == "percent (0-100)" and ours["subtype_scheme"] == "st_gallen_2013"


def test_weights_are_safetensors_not_a_pickle(tmp_path):
    _network, folder = save(tmp_path / "model")
    data = (folder / "models/model.safetensors").read_bytes()
    (header_length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_length])
    assert "branches.shared.extractor.stem.0.weight" in header
    assert not data.startswith(b"\x80")  # pickle protocol marker


def test_loading_never_unpickles(tmp_path, monkeypatch):
    network, folder = save(tmp_path / "model")

    def refuse(*_args, **_kwargs):
        raise AssertionError("a pickle was loaded")

    for target in ("pickle.load", "pickle.loads", "pickle.Unpickler", "torch.load"):
        monkeypatch.setattr(target, refuse)
    assert_same_outputs(network, load_model_package(folder).network)


def test_tampered_weights_are_refused(tmp_path):
    _network, folder = save(tmp_path / "model")
    weights = folder / "models/model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF  # one flipped byte in the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelPackageError, match="SHA-256"):
        load_model_package(folder)


def test_weights_of_another_architecture_are_refused(tmp_path):
    _network, folder = save(tmp_path / "model")
    metadata_path = folder / "configs/metadata.json"
    bundle = json.loads(metadata_path.read_text(encoding="utf-8"))
    bundle["breast_subtype"]["network"]["widths"] = [8, 16, 32, 32]
    metadata_path.write_text(json.dumps(bundle))
    with pytest.raises(ModelPackageError, match="do not fit its network configuration"):
        load_model_package(folder)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "models/model.safetensors").unlink(), "lacks models/model.safetensors"),
        (lambda f: (f / "configs/metadata.json").unlink(), "lacks configs/metadata.json"),
        (lambda f: (f / "configs/metadata.json").write_text("{not json"), "not valid JSON"),
        (lambda f: (f / "configs/metadata.json").write_text('{"version": "1"}'), "lacks the breast_subtype"),
    ],
)
def test_incomplete_packages_are_refused(tmp_path, damage, message):
    _network, folder = save(tmp_path / "model")
    damage(folder)
    with pytest.raises(ModelPackageError, match=message):
        load_model_package(folder)


def test_an_invalid_config_in_a_package_is_refused(tmp_path):
    _network, folder = save(tmp_path / "model")
    metadata_path = folder / "configs/metadata.json"
    bundle = json.loads(metadata_path.read_text(encoding="utf-8"))
    bundle["breast_subtype"]["preprocessing"]["rim_mm"] = -1
    metadata_path.write_text(json.dumps(bundle))
    with pytest.raises(ModelPackageError, match="rim_mm"):
        load_model_package(folder)


def test_a_package_trained_on_numbers_in_another_order_is_refused(tmp_path):
    """A package records the margin numbers it reads; one trained before a number was inserted
    (here: the band's homogeneity where this version computes its amplitude) is refused by name,
    never fed the wrong measure."""
    _network, folder = save(tmp_path / "model")
    metadata_path = folder / "configs/metadata.json"
    bundle = json.loads(metadata_path.read_text(encoding="utf-8"))
    recorded = bundle["breast_subtype"]["scalar_features"]
    assert recorded == list(SCALAR_FEATURES[: NETWORK_CONFIG.n_scalar_features])
    assert recorded[24] == "peritumoral_amplitude"
    recorded[24] = "peritumoral_homogeneity"
    metadata_path.write_text(json.dumps(bundle))
    with pytest.raises(
        ModelPackageError,
        match=r"number 25: package peritumoral_homogeneity, this version peritumoral_amplitude",
    ):
        load_model_package(folder)
    read = NETWORK_CONFIG.n_scalar_features
    bundle["breast_subtype"]["scalar_features"] = list(SCALAR_FEATURES[: read - 1])
    metadata_path.write_text(json.dumps(bundle))
    with pytest.raises(ModelPackageError, match=rf"number {read}: package none"):
        load_model_package(folder)


def test_a_zipped_package_loads_and_a_traversing_zip_is_refused(tmp_path):
    network, folder = save(tmp_path / "model")
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.rglob("*"):
            zf.write(path, Path("model") / path.relative_to(folder))
    loaded = load_model_package(archive)
    assert loaded.path == archive
    assert_same_outputs(network, loaded.network)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escaped.txt", "x")
    with pytest.raises(ModelPackageError, match="unsafe"):
        load_model_package(evil)
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_saving_is_atomic_and_leaves_an_existing_package_intact_on_failure(tmp_path):
    network, folder = save(tmp_path / "model", seed=0)
    before = (folder / "models/model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="not plain JSON"):
        save(folder, seed=1, metrics={"auc": {0.5, 0.6}})  # a set is not JSON
    assert (folder / "models/model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left behind
    assert_same_outputs(network, load_model_package(folder).network)


def test_saving_overwrites_with_the_new_weights(tmp_path):
    save(tmp_path / "model", seed=0)
    network, folder = save(tmp_path / "model", seed=1)
    assert_same_outputs(network, load_model_package(folder).network)


def test_metadata_needs_an_id_and_version(tmp_path):
    with pytest.raises(ValueError, match="id"):
        save(tmp_path / "model", id="")
    assert not (tmp_path / "model").exists()


def test_the_demo_model_lives_inside_the_package():
    assert DEMO_MODEL_DIR.parent.name == "model" and DEMO_MODEL_DIR.name == "demo_model"
    assert DEMO_MODEL_DIR.parent.parent.name == "BreastSubtypeLib"
