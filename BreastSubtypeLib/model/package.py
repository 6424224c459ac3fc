"""The model package: a folder (or a zip of it) laid out like a MONAI bundle (SPEC §4).

```
configs/metadata.json     MONAI's mandatory keys + "breast_subtype": network and preprocessing
                          configs, tasks and units, thresholds, subtype scheme, metrics, weights SHA-256
models/model.safetensors  the weights (tensors only: loading never unpickles anything)
docs/README.md            the model card
LICENSE
```
Loading reads JSON and tensors only; configs are data validated by their dataclasses, never code.
The weights' SHA-256 recorded in the metadata is checked before the network is built.

>>> save_model_package(net, net_config, prep_config, "out/model", metadata={"id": "m", "version": "1.0.0"},
...                    model_card_markdown="# m", license_text="Apache-2.0")  # doctest: +SKIP
>>> loaded = load_model_package("out/model")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from BreastSubtypeLib.atomic import atomic_directory
from BreastSubtypeLib.errors import BadInputError, ModelPackageError
from BreastSubtypeLib.model.config import (
    INPUT_CHANNELS,
    REGIONS,
    SCALAR_FEATURES,
    NetworkConfig,
    PreprocessingConfig,
)
from BreastSubtypeLib.tasks import RECEPTORS, TASK_OUTPUT_KEYS

DEMO_MODEL_DIR = Path(__file__).resolve().parent / "demo_model"
METADATA_FILE = "configs/metadata.json"
WEIGHTS_FILE = "models/model.safetensors"
MODEL_CARD_FILE = "docs/README.md"
LICENSE_FILE = "LICENSE"
FORMAT_VERSION = 1
# The schema MONAI bundles name in their metadata (recorded for recognisability; never fetched).
MONAI_METADATA_SCHEMA = (
    "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json"
)
_REQUIRED_METADATA = ("id", "version")


@dataclass
class LoadedModel:
    """A model ready to run: the network in eval mode on the CPU and everything it was trained with.

    ``metadata`` is the package's own section (``metadata.json["breast_subtype"]``: id, version,
    thresholds, subtype scheme, demonstration, metrics, ...); ``bundle_metadata`` is the whole file.
    """

    network: Any
    network_config: NetworkConfig
    preprocessing_config: PreprocessingConfig
    metadata: dict[str, Any]
    weights_sha256: str
    path: Path
    bundle_metadata: dict[str, Any] = field(default_factory=dict)


def _task_units() -> dict[str, dict[str, str]]:
    units = {
        task: {
            "output": TASK_OUTPUT_KEYS[task],
            "kind": "binary classification",
            "unit": "logit; probability of positive status = sigmoid(logit)",
        }
        for task in RECEPTORS
    }
    units["ki67"] = {"output": TASK_OUTPUT_KEYS["ki67"], "kind": "regression", "unit": "percent (0-100)"}
    return units


def _network_data_format(network_config: NetworkConfig, preprocessing: PreprocessingConfig) -> dict[str, Any]:
    crop = list(reversed(preprocessing.crop_size_voxels))  # (D, H, W) = (z, y, x)
    outputs: dict[str, Any] = {}
    for task in network_config.tasks:
        key = TASK_OUTPUT_KEYS[task]
        if task == "ki67":
            outputs[key] = {
                "type": "number",
                "format": "percent",
                "num_channels": 1,
                "spatial_shape": [1],
                "dtype": "float32",
                "value_range": [0, 100],
                "is_patch_data": False,
                "channel_def": {"0": "Ki-67 index (percent)"},
            }
        else:
            outputs[key] = {
                "type": "logits",
                "format": "classes",
                "num_channels": 1,
                "spatial_shape": [1],
                "dtype": "float32",
                "value_range": [],
                "is_patch_data": False,
                "channel_def": {"0": f"{task.upper()} positive (logit)"},
            }
    outputs["roi_weights"] = {
        "type": "probabilities",
        "format": "weights",
        "num_channels": len(REGIONS),
        "spatial_shape": [1],
        "dtype": "float32",
        "value_range": [0, 1],
        "is_patch_data": False,
        "channel_def": dict(enumerate(REGIONS)),
    }
    outputs["attention_fused"] = {
        "type": "image",
        "format": "attention",
        "num_channels": 1,
        "spatial_shape": crop,
        "dtype": "float32",
        "value_range": [0, 1],
        "is_patch_data": True,
        "channel_def": {"0": "fused spatial attention"},
    }
    scalar_features = SCALAR_FEATURES[: network_config.n_scalar_features]
    inputs = {
        "image": {
            "type": "image",
            "format": "magnitude",
            "modality": "MR",
            "num_channels": len(INPUT_CHANNELS),
            "spatial_shape": crop,
            "dtype": "float32",
            "value_range": list(preprocessing.clip_range),
            "is_patch_data": True,
            "channel_def": {str(i): name for i, name in enumerate(INPUT_CHANNELS)},
        },
        "scalars": {
            "type": "vector",
            "format": "features",
            "num_channels": len(scalar_features),
            "spatial_shape": [len(scalar_features)],
            "dtype": "float32",
            "value_range": [],
            "is_patch_data": False,
            "channel_def": {str(i): name for i, name in enumerate(scalar_features)},
        },
    }
    for spec in outputs.values():
        spec["channel_def"] = {str(k): v for k, v in spec["channel_def"].items()}
    return {"inputs": inputs, "outputs": outputs}


def library_versions() -> dict[str, str]:
    """Versions of the libraries a package is written with (recorded in its metadata).

    MONAI is recorded when present (the training package uses it; inference never imports it).
    """
    import numpy
    import safetensors
    import SimpleITK
    import torch

    versions = {
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "safetensors": safetensors.__version__,
        "SimpleITK": SimpleITK.Version_VersionString(),
        "python": platform.python_version(),
    }
    try:
        import monai
    except ImportError:
        pass
    else:
        versions["monai"] = monai.__version__
    return versions


def _changelog_by_version(version: str, lines: list[str]) -> dict[str, str]:
    """MONAI's {version: text} from changelog lines; a line that starts with "X.Y.Z:" keeps its own
    version (so a package carries its history), the others are joined under ``version``.

    >>> _changelog_by_version("0.8.0", ["0.8.0: new", "0.7.1: old", "note"])
    {'0.8.0': '0.8.0: new; note', '0.7.1': '0.7.1: old'}
    """
    out: dict[str, list[str]] = {version: []}
    for line in lines:
        match = re.match(r"(\d+\.\d+\.\d+):", line)
        out.setdefault(match.group(1) if match else version, []).append(line)
    return {key: "; ".join(texts) for key, texts in out.items() if texts}


def _bundle_metadata(
    metadata: dict[str, Any],
    network,
    network_config: NetworkConfig,
    preprocessing: PreprocessingConfig,
    weights_sha256: str,
) -> dict[str, Any]:
    versions = library_versions()
    ours = {
        **metadata,
        "format_version": FORMAT_VERSION,
        "network": network_config.to_dict(),
        "preprocessing": preprocessing.to_dict(),
        "input_channels": list(INPUT_CHANNELS),
        "scalar_features": list(SCALAR_FEATURES[: network_config.n_scalar_features]),
        "regions": list(REGIONS),
        "tasks": _task_units(),
        "cam_layer_names": dict(network.cam_layer_names),
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": weights_sha256,
    }
    changelog = metadata.get("changelog") or {}
    if isinstance(changelog, list | tuple):
        changelog = _changelog_by_version(str(metadata["version"]), [str(c) for c in changelog])
    demonstration = bool(metadata.get("demonstration", False))
    description = str(metadata.get("description", ""))
    if demonstration and "demonstration" not in description.lower():
        description = f"DEMONSTRATION model, not for clinical use. {description}".strip()
    return {
        "schema": MONAI_METADATA_SCHEMA,
        "version": str(metadata["version"]),
        "changelog": changelog,
        "monai_version": versions.get("monai", "not installed"),
        "pytorch_version": versions["torch"].split("+")[0],
        "numpy_version": versions["numpy"],
        "optional_packages_version": {k: versions[k] for k in ("safetensors", "SimpleITK")},
        "name": str(metadata.get("title", metadata["id"])),
        "task": "Molecular biomarkers (ER, PR, HER2 status and Ki-67 index) of breast cancer from one "
        "post-contrast DCE-MRI volume and its tumour mask",
        "description": description,
        "authors": metadata.get("authors", ["BreastSubtype team"]),
        "copyright": str(metadata.get("copyright", "Copyright (c) BreastSubtype team")),
        "intended_use": str(metadata.get("intended_use", "Research use only.")),
        "data_type": "nifti, nrrd, dicom",
        "references": [
            "Zeng & Zhou, Spatial Multi-Task Learning for Breast Cancer Molecular Subtype "
            "Prediction from Single-Phase DCE-MRI, arXiv 2601.07001 (2026)"
        ],
        "network_data_format": _network_data_format(network_config, preprocessing),
        "breast_subtype": ours,
    }


def save_model_package(
    network,
    network_config: NetworkConfig,
    preprocessing_config: PreprocessingConfig,
    out_dir: str | os.PathLike,
    *,
    metadata: dict[str, Any],
    model_card_markdown: str,
    license_text: str,
) -> Path:
    """Write the package folder ``out_dir`` atomically (replacing an existing one only when complete).

    ``metadata`` holds what the training knows: id, version, title, description, authors, thresholds
    per task, ki67_cutoff_percent, subtype_scheme, training_data, metrics (with CIs), intended_use,
    changelog, demonstration (bool). It must be JSON-serialisable; ``id`` and ``version`` are required.
    """
    from safetensors.torch import save

    missing = [key for key in _REQUIRED_METADATA if not metadata.get(key)]
    if missing:
        raise ValueError(f"model metadata lacks {', '.join(missing)}")
    if getattr(network, "config", network_config) != network_config:
        raise ValueError("the network was not built from network_config")
    # Contiguous CPU copies: safetensors refuses views and shared storage.
    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in network.state_dict().items()}
    # One metadata key: safetensors writes its metadata map in arbitrary order, so a second key would
    # make two exports of the same weights differ in bytes and in weights_sha256.
    weights = save(tensors, metadata={"format": "pt"})
    digest = hashlib.sha256(weights).hexdigest()
    bundle = _bundle_metadata(dict(metadata), network, network_config, preprocessing_config, digest)
    try:
        text = json.dumps(bundle, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ValueError(f"model metadata is not plain JSON data ({exc})") from exc
    with atomic_directory(out_dir) as folder:
        for relative, content in (
            (WEIGHTS_FILE, weights),
            (METADATA_FILE, text.encode("utf-8")),
            (MODEL_CARD_FILE, model_card_markdown.encode("utf-8")),
            (LICENSE_FILE, license_text.encode("utf-8")),
        ):
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    return Path(out_dir)


def _read_metadata(folder: Path, source: str) -> dict[str, Any]:
    path = folder / METADATA_FILE
    if not path.is_file():
        raise ModelPackageError(f"Model package {source} lacks {METADATA_FILE}.")
    try:
        bundle = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelPackageError(
            f"{METADATA_FILE} of model package {source} is not valid JSON ({exc})."
        ) from None
    ours = bundle.get("breast_subtype") if isinstance(bundle, dict) else None
    if not isinstance(ours, dict) or not all(
        k in ours for k in ("network", "preprocessing", "weights_sha256")
    ):
        raise ModelPackageError(
            f"{METADATA_FILE} of model package {source} lacks the breast_subtype network, "
            "preprocessing and weights_sha256 entries."
        )
    return bundle


def _check_scalar_features(ours: dict[str, Any], network_config: NetworkConfig, source: str) -> None:
    """The numbers a package was trained on must be the ones this version computes, in its order:
    a number inserted or renamed since would otherwise feed one margin measure into the weights of
    another, silently. Packages record their names; the shipped ones all predate any reordering."""
    recorded = ours.get("scalar_features")
    if recorded is None:
        return
    expected = list(SCALAR_FEATURES[: network_config.n_scalar_features])
    if list(recorded) != expected:
        differing = next(
            (i for i, pair in enumerate(zip(recorded, expected)) if pair[0] != pair[1]),
            min(len(recorded), len(expected)),
        )
        raise ModelPackageError(
            f"Model package {source} was trained on margin numbers this version computes differently "
            f"(number {differing + 1}: package "
            f"{recorded[differing] if differing < len(recorded) else 'none'}, this version "
            f"{expected[differing] if differing < len(expected) else 'none'}); use the version it was "
            "trained with."
        )


def _load_folder(folder: Path, source: str, path: Path) -> LoadedModel:
    from safetensors import SafetensorError
    from safetensors.torch import load

    from BreastSubtypeLib.model.network import SpatialMultiTaskNet

    bundle = _read_metadata(folder, source)
    ours = bundle["breast_subtype"]
    try:
        network_config = NetworkConfig.from_package(ours["network"])
        preprocessing_config = PreprocessingConfig.from_dict(ours["preprocessing"])
    except BadInputError as exc:
        raise ModelPackageError(f"Model package {source} has an invalid configuration: {exc}") from None
    _check_scalar_features(ours, network_config, source)
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ModelPackageError(f"Model package {source} lacks {WEIGHTS_FILE}.")
    weights = weights_path.read_bytes()
    digest = hashlib.sha256(weights).hexdigest()
    if digest != str(ours["weights_sha256"]).lower():
        raise ModelPackageError(
            f"The weights of model package {source} fail their SHA-256 check "
            f"(expected {ours['weights_sha256']}, got {digest})."
        )
    try:
        tensors = load(weights)  # safetensors: raw tensors, no code, no pickle
    except (SafetensorError, ValueError) as exc:
        raise ModelPackageError(f"The weights of model package {source} cannot be read ({exc}).") from None
    network = SpatialMultiTaskNet(network_config)
    try:
        network.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[:3]
        raise ModelPackageError(
            f"The weights of model package {source} do not fit its network configuration "
            f"({' '.join(line.strip() for line in first)})."
        ) from None
    return LoadedModel(
        network=network.eval(),
        network_config=network_config,
        preprocessing_config=preprocessing_config,
        metadata=ours,
        weights_sha256=digest,
        path=path,
        bundle_metadata=bundle,
    )


def load_model_package(path: str | os.PathLike) -> LoadedModel:
    """Load a package folder, a zip of one (extracted safely to a temporary folder), or a registry id."""
    candidate = Path(path).expanduser()
    if candidate.is_dir():
        return _load_folder(candidate, str(candidate), candidate)
    if candidate.is_file():
        import zipfile

        from BreastSubtypeLib.model.registry import _extract_safely

        if not zipfile.is_zipfile(candidate):
            raise ModelPackageError(f"Model package {candidate} is neither a folder nor a zip file.")
        with tempfile.TemporaryDirectory(prefix="breast-subtype-model-") as tmp:
            root = _extract_safely(candidate, Path(tmp), str(candidate))
            return _load_folder(root, str(candidate), candidate)
    if os.sep in str(path) or "/" in str(path) or str(path).endswith(".zip"):
        raise ModelPackageError(f"Model package {candidate} does not exist.")
    from BreastSubtypeLib.model.registry import resolve

    folder = resolve(str(path))
    return _load_folder(folder, f"{path!r} ({folder})", folder)
