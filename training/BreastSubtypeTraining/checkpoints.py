"""A training run's checkpoints: weights as safetensors, optimizer moments as tensors only.

``DIR/checkpoints/{last,best}.safetensors`` hold the network's tensors (``network.*``) and the
loss's learned task weights (``loss.*``); ``optimizer.pt`` and ``state.json`` (epoch, step, best
score, history) make a run resumable. ``state.json`` is written last: it marks a checkpoint
complete. Nothing here unpickles arbitrary objects.

>>> save_checkpoint(Path("run/checkpoints"), "best", network, loss_module)  # doctest: +SKIP
>>> load_network_weights(Path("run/checkpoints/best.safetensors"), network)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from BreastSubtypeLib.atomic import atomic_path, write_text_atomic

STATE_FILE = "state.json"


def save_checkpoint(directory: Path, name: str, network, loss_module) -> None:
    tensors = {f"network.{k}": v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    tensors.update({f"loss.{k}": v.detach().cpu().contiguous() for k, v in loss_module.state_dict().items()})
    with atomic_path(directory / f"{name}.safetensors") as tmp:
        save_file(tensors, str(tmp))


def _part(tensors: dict, prefix: str) -> dict:
    return {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}


def load_network_weights(path: Path, network) -> dict:
    """Load a checkpoint's network tensors into ``network``; returns all of the file's tensors."""
    tensors = load_file(str(path))
    network.load_state_dict(_part(tensors, "network."))
    return tensors


def load_checkpoint(directory: Path, name: str, network, loss_module) -> None:
    tensors = load_network_weights(directory / f"{name}.safetensors", network)
    loss_state = _part(tensors, "loss.")
    if loss_state:
        loss_module.load_state_dict(loss_state)


def save_training_state(directory: Path, optimizer, state: dict) -> None:
    with atomic_path(directory / "optimizer.pt") as tmp:
        torch.save(optimizer.state_dict(), tmp)
    write_text_atomic(directory / STATE_FILE, json.dumps(state, indent=2) + "\n")


def load_training_state(directory: Path, optimizer) -> dict:
    # weights_only: the optimizer's moments are tensors and numbers; nothing else is unpickled.
    optimizer.load_state_dict(torch.load(directory / "optimizer.pt", map_location="cpu", weights_only=True))
    return json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
