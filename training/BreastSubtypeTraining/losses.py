"""Joint loss of the spatial multi-task network (SPEC §1, §8).

Binary cross-entropy (with logits) for ER, PR and HER2 plus a regression loss for Ki-67, each
masked per case for missing labels: public DCE-MRI sets have no Ki-67 and often lack PR or HER2,
so a task without a label in the batch contributes exactly 0 (and no NaN) to the loss and its
gradient. Optional uncertainty weighting learns one log-variance per task (Kendall, Gal & Cipolla,
CVPR 2018) instead of hand-tuned weights.

>>> import torch
>>> loss = MultiTaskLoss()
>>> outputs = {"er": torch.zeros(2), "pr": torch.zeros(2), "her2": torch.zeros(2),
...            "ki67_percent": torch.tensor([20.0, 30.0])}
>>> labels = {"er": torch.tensor([1.0, 0.0]), "ki67_percent": torch.tensor([20.0, float("nan")])}
>>> total, per_task = loss(outputs, labels)
>>> round(per_task["er"], 4), per_task["pr"], per_task["ki67_percent"]
(0.6931, 0.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from BreastSubtypeLib.tasks import KI67_KEY, LABELS

# Ki-67 is regressed as a fraction (percent / 100) so its loss has the same order of magnitude as
# the binary cross-entropies and the task weights stay interpretable.
KI67_SCALE = 100.0
KI67_LOSSES = ("huber", "mse", "l1", "log")
# How a model card names each (export.py).
KI67_LOSS_WORDS = {
    "huber": "a Huber loss on the percent scale",
    "mse": "the squared error on the percent scale",
    "l1": "the absolute error on the percent scale",
    "log": "a Huber loss on log(1 + Ki-67 %)",
}


class MultiTaskLoss(nn.Module):
    """Masked multi-task loss.

    ``ki67_loss="huber"`` (default) is the Huber loss with ``huber_delta`` = 0.1 (10 Ki-67 points):
    quadratic, i.e. the paper's MSE, for errors within the ~10-point inter-observer variability of
    Ki-67 counting, linear beyond, so the skewed tail of very proliferative tumours and mislabelled
    cases does not dominate the shared extractor. ``"mse"`` reproduces the paper's loss exactly.
    Errors are measured in units of ``ki67_scale_percent`` (default 100: fractions). Training sets
    it to the standard deviation of the training split's Ki-67 labels (``ki67_standardise``), with
    ``huber_delta`` 1: a Ki-67 error of one SD then weighs like a confident receptor mistake, where
    fractions gave Ki-67 a gradient ~30 times smaller than a receptor's. ``"l1"`` is the absolute
    error in the same units: it is minimised by the conditional median rather than the mean, which
    is what the reported mean absolute error rewards when Ki-67 is skewed. ``"log"`` is the Huber
    loss on ``log(1 + Ki-67 %)`` in units of ``ki67_log_scale`` (training: the SD of the training
    labels on that scale): relative errors, so a 4 % tumour called 10 % costs what 40 % called
    100 % would, where the percent scale lets low values drift toward the cohort mean.
    """

    def __init__(
        self,
        tasks: Sequence[str] = LABELS,
        *,
        weights: Mapping[str, float] | None = None,
        uncertainty_weighting: bool = False,
        ki67_loss: str = "huber",
        huber_delta: float = 0.1,
        ki67_scale_percent: float = KI67_SCALE,
        ki67_log_scale: float = 1.0,
    ) -> None:
        super().__init__()
        unknown = [task for task in tasks if task not in LABELS]
        if unknown or not tasks:
            raise ValueError(f"tasks must be a non-empty subset of {LABELS}, got {list(tasks)}")
        if ki67_loss not in KI67_LOSSES:
            raise ValueError(f"ki67_loss must be one of {', '.join(KI67_LOSSES)}, got {ki67_loss!r}")
        self.tasks = tuple(tasks)
        self.weights = {task: float((weights or {}).get(task, 1.0)) for task in self.tasks}
        self.ki67_loss = ki67_loss
        if not ki67_scale_percent > 0:
            raise ValueError(f"ki67_scale_percent must be positive, got {ki67_scale_percent!r}")
        self.ki67_scale_percent = float(ki67_scale_percent)
        if not ki67_log_scale > 0:
            raise ValueError(f"ki67_log_scale must be positive, got {ki67_log_scale!r}")
        self.ki67_log_scale = float(ki67_log_scale)
        self.huber_delta = float(huber_delta)
        self.uncertainty_weighting = bool(uncertainty_weighting)
        # s_t = log(sigma_t^2); starting at 0 means weight 1, i.e. the unweighted sum.
        self.log_variances = (
            nn.Parameter(torch.zeros(len(self.tasks))) if self.uncertainty_weighting else None
        )

    def task_loss(self, task: str, prediction: torch.Tensor, target: torch.Tensor, known: torch.Tensor):
        """Mean loss over the labelled cases; exactly 0 (with a zero, finite gradient) if none."""
        prediction = prediction.reshape(-1).float()
        target = target.reshape(-1).to(prediction)
        known = known.reshape(-1).bool() & torch.isfinite(target)
        # Replace unknown targets before the elementwise loss so NaN never enters the graph.
        safe_target = torch.where(known, target, torch.zeros_like(target))
        if task == KI67_KEY:
            scaled_prediction = prediction / self.ki67_scale_percent
            scaled_target = safe_target / self.ki67_scale_percent
            if self.ki67_loss == "log":
                # log1p: smooth at 0 % (no clamp that would stop the gradient), relative above ~5 %.
                error = torch.log1p(prediction.clamp_min(0.0)) - torch.log1p(safe_target.clamp_min(0.0))
                elementwise = F.huber_loss(
                    error / self.ki67_log_scale,
                    torch.zeros_like(error),
                    reduction="none",
                    delta=self.huber_delta,
                )
            elif self.ki67_loss == "mse":
                elementwise = F.mse_loss(scaled_prediction, scaled_target, reduction="none")
            elif self.ki67_loss == "l1":
                elementwise = F.l1_loss(scaled_prediction, scaled_target, reduction="none")
            else:
                elementwise = F.huber_loss(
                    scaled_prediction, scaled_target, reduction="none", delta=self.huber_delta
                )
        else:
            elementwise = F.binary_cross_entropy_with_logits(prediction, safe_target, reduction="none")
        weight = known.to(elementwise.dtype)
        return (elementwise * weight).sum() / weight.sum().clamp(min=1.0), bool(known.any())

    def forward(
        self,
        outputs: Mapping[str, torch.Tensor],
        labels: Mapping[str, torch.Tensor],
        known: Mapping[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the total loss and each task's (unweighted) loss as floats for logging.

        ``labels[task]`` is a (B,) tensor (NaN where unknown) and ``known[task]`` an optional (B,)
        boolean mask; a task missing from ``labels`` counts as unknown for every case.
        """
        reference = outputs[self.tasks[0]]
        total = reference.new_zeros((), dtype=torch.float32)
        per_task: dict[str, float] = {}
        for index, task in enumerate(self.tasks):
            prediction = outputs[task]
            if task in labels:
                target = labels[task]
                mask = known[task] if known is not None and task in known else torch.isfinite(target)
            else:
                target = torch.zeros_like(prediction)
                mask = torch.zeros_like(prediction, dtype=torch.bool)
            loss, any_known = self.task_loss(task, prediction, target, mask)
            per_task[task] = float(loss.detach())
            weighted = self.weights[task] * loss
            if self.log_variances is not None and any_known:
                # Kendall et al.: 1/(2 sigma^2) L + log sigma for regression, 1/sigma^2 L + log sigma
                # for classification; with s = log sigma^2 both regularisers are s / 2.
                s = self.log_variances[index]
                scale = 0.5 if task == KI67_KEY else 1.0
                weighted = scale * torch.exp(-s) * weighted + 0.5 * s
            total = total + weighted
        return total, per_task
