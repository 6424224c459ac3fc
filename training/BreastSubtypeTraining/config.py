"""The training configuration: every setting of a run besides its data (SPEC §8).

``TrainingConfig`` is a flat dataclass read from YAML (plain data, never code: ``yaml.safe_load``);
unknown keys are refused, so a typo never silently trains with a default. A new setting is one
field here (with its default and, where it has a range, a check in ``from_dict``).

>>> TrainingConfig.from_dict({"epochs": 3}).epochs
3
>>> build_configs(TrainingConfig(ablation="no_peritumoral"))[0].use_peritumoral
False
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.model.config import ABLATIONS, NetworkConfig, PreprocessingConfig
from BreastSubtypeLib.subtype import DEFAULT_SCHEME, SCHEMES
from BreastSubtypeLib.tasks import LABELS, TASK_OUTPUT_KEYS, TASKS
from BreastSubtypeTraining.losses import KI67_LOSSES


@dataclass
class TrainingConfig:
    """Everything a training run needs besides the data; loaded from YAML (data, never code)."""

    # The validated default recipe (training/EVALUATION.md): a fixed 30-epoch schedule whose final
    # weights are kept, strong weight decay against memorising a few hundred cases, batches of 16.
    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    schedule: str = "onecycle"  # "onecycle" (warm-up + cosine) or "cosine"
    warmup_fraction: float = 0.05
    early_stopping_patience: int = 10
    min_epochs: int = 0  # epochs before early stopping and best-checkpoint selection start
    monitor: str = "mean_auc"  # "mean_auc" or "loss"
    tasks: tuple[str, ...] = LABELS
    task_weights: dict[str, float] = field(default_factory=dict)
    uncertainty_weighting: bool = False
    # Recipe 6 (EVALUATION.md): Ki-67 is fitted on log(1 + %) (losses.py; the MAE-optimal median
    # of a skewed percentage) and its deep-path logit is held small (deep_penalty), so the linear
    # read of the margin profile (NetworkConfig.scalar_skip) carries Ki-67 and the crop's features
    # add only what they reliably hold on a few hundred cases. Recipe 7 holds the receptors' deep
    # paths lightly too (1, not 10, which cost ER and PR): on the development cohorts it removed the
    # runs whose deep path had memorised the split (FINAL4 seed 1: ER 0.824 -> 0.890).
    ki67_loss: str = "log"
    # {task: penalty}: adds penalty x the batch variance of the task's deep-path logit to the loss.
    deep_penalty: dict[str, float] = field(
        default_factory=lambda: {"ki67": 10.0, "er": 1.0, "pr": 1.0, "her2": 1.0}
    )
    # {task: penalty}: adds penalty x the sum of the absolute weights of the task's linear read of the
    # numbers to the loss (L1: a sparse read). Recipe 14: the band's numbers are collinear, so a read
    # without it spread HER2's weight over a different few with each training sample, and an unlucky
    # sample lost 1.5 points of achievable AUC (EVALUATION.md, 2026-12-01). 0.024 per mean loss is a
    # logistic regression's C 0.1 at 420 training cases; a larger cohort weighs it less per case.
    linear_l1: dict[str, float] = field(default_factory=lambda: {"er": 0.024, "pr": 0.024, "her2": 0.024})
    # Learning rate of the linear read of the numbers (NetworkConfig.scalar_skip) x this factor.
    # Recipe 8: 10. Adam moves a weight by about the learning rate a step, so with one rate the read
    # ended ~4x smaller than the logistic ridge on the same numbers; 10 reaches it (EVALUATION.md).
    # 1 keeps one learning rate for every weight (recipe 7 and earlier).
    linear_lr_factor: float = 10.0
    ki67_standardise: bool = True  # Ki-67 loss in SDs of the training split's labels (losses.py)
    selection: str = "last"  # "last": the fixed schedule's final weights; "best": best validation epoch
    seed: int = 0  # initialisation, shuffling and augmentation
    split_seed: int = 0  # patient-level splits: the same test cases whatever the training seed
    split_ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)
    augment: bool = True
    # keyword arguments of augment.training_augmentation; no resampling affine by default (flips,
    # 90-degree turns and intensity changes keep the masks exact and cost no interpolation)
    augmentation: dict = field(default_factory=lambda: {"affine_prob": 0.0})
    num_workers: int = 0
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    deterministic: bool = True
    ablation: str = "full"  # a key of BreastSubtypeLib.model.config.ABLATIONS
    network: dict = field(default_factory=dict)  # overrides of NetworkConfig
    preprocessing: dict = field(default_factory=dict)  # overrides of PreprocessingConfig
    cache_dir: str | None = None  # shared crop cache (ablations reuse one); default DIR/cache
    bootstrap_samples: int = 1000
    subtype_scheme: str = DEFAULT_SCHEME
    model_id: str = "breast-subtype-model"
    model_version: str = "0.1.0"
    model_title: str = "BreastSubtype spatial multi-task model"
    demonstration: bool = False
    intended_use: str = (
        "Research use only: estimating ER, PR, HER2 and Ki-67 from one post-contrast breast DCE-MRI "
        "volume. Not a medical device; not for diagnosis or treatment decisions."
    )
    changelog: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "training config") -> TrainingConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise BadInputError(f"{source}: unknown setting(s) {', '.join(unknown)}.")
        values = dict(data)
        for name in ("tasks", "split_ratios"):
            if name in values:
                values[name] = tuple(values[name])
        config = cls(**values)
        problems = []
        if config.epochs < 1 or config.batch_size < 1:
            problems.append("epochs and batch_size must be at least 1")
        if not 0 <= config.min_epochs <= config.epochs:
            problems.append("min_epochs must be between 0 and epochs")
        if not config.learning_rate > 0:
            problems.append("learning_rate must be positive")
        if isinstance(config.linear_lr_factor, bool) or not (
            isinstance(config.linear_lr_factor, int | float) and 0 < config.linear_lr_factor < 1e4
        ):
            problems.append(f"linear_lr_factor must be a positive number, got {config.linear_lr_factor!r}")
        if config.schedule not in ("onecycle", "cosine"):
            problems.append(f"schedule must be onecycle or cosine, got {config.schedule!r}")
        if config.ki67_loss not in KI67_LOSSES:
            problems.append(f"ki67_loss must be one of {', '.join(KI67_LOSSES)}, got {config.ki67_loss!r}")
        for name in ("deep_penalty", "linear_l1"):
            penalty = getattr(config, name)
            if not isinstance(penalty, dict) or any(
                task not in TASKS
                or isinstance(value, bool)
                or not isinstance(value, int | float)
                or not value >= 0
                for task, value in penalty.items()
            ):
                problems.append(
                    f"{name} must map tasks ({', '.join(TASKS)}) to zero or positive numbers, got {penalty!r}"
                )
        if config.selection not in ("last", "best"):
            problems.append(f"selection must be last or best, got {config.selection!r}")
        if config.monitor not in ("mean_auc", "loss"):
            problems.append(f"monitor must be mean_auc or loss, got {config.monitor!r}")
        if not config.tasks or not set(config.tasks) <= set(LABELS):
            problems.append(f"tasks must be a subset of {', '.join(LABELS)}")
        if config.subtype_scheme not in SCHEMES:
            problems.append(
                f"subtype_scheme must be one of {', '.join(SCHEMES)}, got {config.subtype_scheme!r}"
            )
        if len(config.split_ratios) != 3 or abs(sum(config.split_ratios) - 1.0) > 1e-6:
            problems.append("split_ratios must be three fractions (train, val, test) summing to 1")
        if problems:
            raise BadInputError(f"{source}: {'; '.join(problems)}.")
        return config


def load_training_config(path: str | Path | None, **overrides) -> TrainingConfig:
    """Read a YAML config (``yaml.safe_load``: plain data only); keyword overrides win."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise BadInputError(f"{path}: training config cannot be read as YAML ({exc}).") from exc
        if not isinstance(data, dict):
            raise BadInputError(f"{path}: training config must be a mapping of settings.")
    data.update({key: value for key, value in overrides.items() if value is not None})
    return TrainingConfig.from_dict(data, source=str(path or "training config"))


def build_configs(config: TrainingConfig):
    """NetworkConfig (ABLATIONS[config.ablation] then config.network overrides) and PreprocessingConfig."""
    if config.ablation not in ABLATIONS:
        raise BadInputError(
            f"training config: unknown ablation {config.ablation!r} (one of {', '.join(ABLATIONS)})."
        )
    network_config = NetworkConfig().with_overrides({**ABLATIONS[config.ablation], **config.network})
    preprocessing_config = PreprocessingConfig().with_overrides(config.preprocessing)
    # Without the linear path the deep path is the whole output: a deep penalty would flatten it, and
    # an L1 penalty would have nothing to act on.
    reads_numbers = network_config.scalar_skip and network_config.n_scalar_features
    for name in ("deep_penalty", "linear_l1"):
        held = sorted(task for task, penalty in getattr(config, name).items() if penalty)
        if held and not reads_numbers:
            raise BadInputError(
                f"training config: {name} ({', '.join(held)}) needs the linear read of the numbers "
                f"(network: scalar_skip: true and n_scalar_features > 0); set {name}: {{}} to turn it off."
            )
    return network_config, preprocessing_config


def trained_tasks(config: TrainingConfig, network_config) -> tuple[str, ...]:
    """Tasks the loss sees: the config's, narrowed to the network's own in single-task variants."""
    network_tasks = [TASK_OUTPUT_KEYS[task] for task in network_config.tasks]
    return tuple(task for task in config.tasks if task in network_tasks) or tuple(network_tasks)
