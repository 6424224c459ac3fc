"""THE model runner: a network on a device, its precision, batches of model inputs, and what its
outputs mean (logits → probabilities → calls at the operating thresholds → surrogate subtype).

``predict`` runs a batch of one through it (with the maps explanations need); training's
evaluation runs its validation and test batches through it, so the figures a model card reports
are computed exactly as a user's prediction.

>>> runner = ModelRunner(loaded.network, "auto")                                # doctest: +SKIP
>>> outputs = runner.outputs(images, scalars)   # {"er": logits (B,), ..., "ki67_percent": (B,)}  # doctest: +SKIP
>>> probabilities([0.0, 2.0]).round(3).tolist()
[0.5, 0.881]
>>> interpret({"er": 2.0, "pr": -1.0, "her2": -3.0, "ki67_percent": 12.0}, {"er": 0.5, "pr": 0.5, "her2": 0.5}).subtype["name"]
'Luminal B-like (HER2-negative)'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from BreastSubtypeLib.inference.device import (
    autocast_context,
    make_deterministic,
    select_device,
    single_case_cpu_threads,
)
from BreastSubtypeLib.inference.explain import DEFAULT_KI67_CUTOFF_PERCENT, forward_with_explanations
from BreastSubtypeLib.model.config import REGIONS
from BreastSubtypeLib.subtype import DEFAULT_SCHEME, subtype_from_probabilities
from BreastSubtypeLib.tasks import KI67_KEY, RECEPTORS

DEFAULT_THRESHOLD = 0.5


def probabilities(logits) -> np.ndarray:
    """The probability of positive status from the network's logits (float64, any shape)."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def operating_thresholds(model) -> dict[str, float]:
    """Per receptor, the probability threshold chosen on validation (0.5 where a package has none).

    ``model`` is a ``LoadedModel`` or its metadata (``metadata.json["breast_subtype"]``).
    """
    metadata = getattr(model, "metadata", model) or {}
    chosen = metadata.get("thresholds") or metadata.get("operating_thresholds") or {}
    return {task: float(chosen.get(task, DEFAULT_THRESHOLD)) for task in RECEPTORS}


def subtype_scheme(model) -> str:
    """The surrogate-subtype scheme a package was evaluated with (the default where it names none)."""
    metadata = getattr(model, "metadata", model) or {}
    return str(metadata.get("subtype_scheme") or DEFAULT_SCHEME)


@dataclass
class CaseCalls:
    """What one case's outputs mean at given thresholds."""

    receptors: dict[str, dict[str, Any]]  # task -> {"probability", "positive", "threshold"}
    ki67_percent: float
    subtype: dict[str, Any]  # subtype_from_probabilities: name, scheme, probability, alternatives, ...
    roi_weights: dict[str, float]  # core, rim, peritumoral (empty when the outputs carry none)


def interpret(
    outputs: Mapping[str, Any], thresholds: Mapping[str, float], scheme: str = DEFAULT_SCHEME
) -> CaseCalls:
    """One case's outputs (logits per receptor, Ki-67 in percent, ROI weights) as calls and a subtype."""
    receptors = {}
    for task in RECEPTORS:
        probability = float(probabilities(np.reshape(outputs[task], -1)[0]))
        receptors[task] = {
            "probability": probability,
            "positive": bool(probability >= thresholds[task]),
            "threshold": float(thresholds[task]),
        }
    ki67_percent = float(np.reshape(outputs[KI67_KEY], -1)[0])
    subtype = subtype_from_probabilities(
        *(receptors[task]["probability"] for task in RECEPTORS),
        ki67_percent,
        thresholds=dict(thresholds),
        scheme=scheme,
    )
    weights = outputs.get("roi_weights")
    roi_weights = {} if weights is None else dict(zip(REGIONS, (float(w) for w in np.reshape(weights, -1))))
    return CaseCalls(receptors, ki67_percent, subtype, roi_weights)


class ModelRunner:
    """A network in eval mode on the chosen device, run with the one precision rule.

    ``device``: "auto" (CUDA, then Apple MPS, then CPU), "cpu", "cuda[:n]", "mps" or a
    ``torch.device``; fp16 autocast on a GPU, float32 on the CPU (``inference.device``).
    ``deterministic`` fixes the GPU kernels so one device gives the same numbers every run.
    """

    def __init__(self, network, device="auto", *, deterministic: bool = True) -> None:
        self.device = select_device(device)
        if deterministic:
            make_deterministic(self.device)
        self.network = network.to(self.device).eval()

    def autocast(self):
        return autocast_context(self.device)

    def _tensors(self, images, scalars):
        import torch

        images = torch.as_tensor(np.ascontiguousarray(images) if isinstance(images, np.ndarray) else images)
        scalars = torch.as_tensor(np.asarray(scalars) if not isinstance(scalars, torch.Tensor) else scalars)
        return (
            images.to(self.device, dtype=torch.float32, non_blocking=True),
            scalars.to(self.device, dtype=torch.float32, non_blocking=True).reshape(images.shape[0], -1),
        )

    def outputs(self, images, scalars) -> dict[str, np.ndarray]:
        """A batch: images (B, 4, D, H, W) and scalars (B, n), arrays or tensors → float32 numpy outputs
        per key (receptor logits (B,), ``ki67_percent`` (B,), ``roi_weights`` (B, 3)); no maps."""
        import torch

        images, scalars = self._tensors(images, scalars)
        with torch.inference_mode(), self.autocast():
            raw = self.network(images, scalars)
        return {
            key: value.detach().float().cpu().numpy()
            for key, value in raw.items()
            if key not in ("attention", "attention_fused") and isinstance(value, torch.Tensor)
        }

    def outputs_and_maps(
        self,
        model_input,
        *,
        explain: bool,
        thresholds: Mapping[str, float] | None = None,
        ki67_cutoff_percent: float = DEFAULT_KI67_CUTOFF_PERCENT,
    ) -> tuple[dict[str, np.ndarray], dict]:
        """A batch of one ``ModelInput`` → (outputs as in :meth:`outputs`, crop-grid maps).

        Maps: attention per scale and fused, and with ``explain`` Grad-CAM per task explaining the
        call made at ``thresholds`` and ``ki67_cutoff_percent`` (``inference.explain``); each
        (D, H, W) float32 in [0, 1] on the crop grid.
        """
        images, scalars = self._tensors(model_input.array[None], model_input.scalars[None])
        with single_case_cpu_threads(self.device):
            raw, maps = forward_with_explanations(
                self.network, images, scalars, tasks=self.network.tasks, explain=explain,
                autocast=self.autocast(), thresholds=thresholds, ki67_cutoff_percent=ki67_cutoff_percent,
            )  # fmt: skip
        return {key: value.numpy() for key, value in raw.items()}, maps
