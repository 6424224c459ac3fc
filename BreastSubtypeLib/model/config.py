"""Configurations of the network and of its preprocessing, as JSON-safe data.

Both travel inside every model package (``configs/metadata.json``), so a model always runs with the
preprocessing it was trained with. ``ABLATIONS`` holds the paper's ablation variants as overrides of
the full model (Zeng & Zhou 2026, SPEC §1).

>>> cfg = NetworkConfig.from_dict({**NetworkConfig().to_dict(), **ABLATIONS["no_attention"]})
>>> cfg.attention
'none'
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.preprocessing.margin_profile import MARGIN_PROFILE_FEATURES
from BreastSubtypeLib.tasks import TASK_OUTPUT_KEYS, TASKS

# Tasks are named once (BreastSubtypeLib.tasks); forward() returns logits of "positive" for the
# receptors and a percentage for Ki-67, under TASK_OUTPUT_KEYS.
REGIONS: tuple[str, ...] = ("core", "rim", "peritumoral")
# Model-input channels, in order (preprocessing writes them, the network reads them).
INPUT_CHANNELS: tuple[str, ...] = ("image", "core", "rim", "peritumoral")
# Scalars fed to the heads so that the lesion's physical size survives the size-adaptive crop,
SIZE_FEATURES: tuple[str, ...] = ("log1p_lesion_volume_ml", "log_crop_spacing_mm")
# then the intensity profile across the tumour margin on the input's own voxels (margin_profile.py).
# A network uses the first ``n_scalar_features`` of them (packages before 0.4 used the size only).
SCALAR_FEATURES: tuple[str, ...] = (*SIZE_FEATURES, *MARGIN_PROFILE_FEATURES)
# Recipes 4 to 9 read the first 21: the four contrasts after the margin shape lowered the Ki-67
# error on three of four development cohorts and raised PR and HER2 on two (EVALUATION.md);
# ``n_scalar_features: 17`` is recipe 3 (no contrasts), 2 the crop-only recipe 2. Recipes 10 and 11
# read the first 24: the profile texture, the near drop and the band's entropy brought the Ki-67
# error against the phantoms' noise-free expected Ki-67 down in all six development runs. Recipe 12
# reads the 25th too, the band's amplitude over the tumour's own signal: it reads the oedema of small
# lesions, which the contrasts over the rim-minus-background difference miss. Recipes 13 and 14 (the
# default) read the 26th, the tumour's mean signal over its rim's with no background taken off: ER up about
# a point of the achievable AUC on 1000 held-out phantoms. The 27th and 28th, the band's homogeneity
# and roughness, are candidates not yet evaluated on a final cohort.
RECIPE_SCALAR_FEATURES = SCALAR_FEATURES.index("peritumoral_homogeneity")
LOG_NUMBER_FLOOR = 1e-3  # NetworkConfig.log_numbers: a zero (an empty tumour) reads as log(1e-3)
# NetworkConfig.scalar_limit_sd, and where predict warns that a case lies far outside the cohort the
# model learned from: 6 training SDs from the training mean. Of 1400 wide-profile development
# phantoms one had a number beyond it: a small necrotic lesion whose rim was barely brighter than the
# tissue around it read 16-17 SD on the peritumoral contrasts, and recipe 10 called its Ki-67 99 %.
NUMBER_LIMIT_SD = 6.0

ATTENTION_MODES = ("multi", "single", "none")
NORMS = ("instance", "batch", "group")
# "per_task": each task weighs core, rim and peritumoral tissue and fuses them on its own (HER2's band
# signal no longer competes with ER/PR's tumour signal for one set of weights); "shared": one for all.
REGION_WEIGHTINGS = ("per_task", "shared")
# Where the coarsest features are averaged for the global descriptor: the whole crop, or only the
# cells the visible ROIs occupy (weighted by how much of each cell they fill). Recipe 5 pools over
# the ROIs: over the crop, Grad-CAM drew up to half of a map's mass from tissue more than 10 mm from
# any ROI, which no prediction needs (training/EVALUATION.md).
GLOBAL_POOLS = ("crop", "roi")
FOV_MODES = ("adaptive", "fixed")
NORMALISATIONS = ("percentile", "zscore")


class ConfigError(BadInputError):
    """A configuration value is missing, of the wrong type or out of range."""


def _positive_int_tuple(name: str, value: Any, length: int | None = None) -> tuple[int, ...]:
    try:
        items = tuple(value)
    except TypeError:
        raise ConfigError(f"{name} must be a list of positive integers, got {value!r}.") from None
    if not items or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in items):
        raise ConfigError(f"{name} must be a list of positive integers, got {value!r}.")
    if length is not None and len(items) != length:
        raise ConfigError(f"{name} must have {length} entries, got {len(items)} ({value!r}).")
    return items


def _positive_float(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a positive number, got {value!r}.")
    return float(value)


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}.")
    return value


class _JsonConfig:
    """to_dict()/from_dict() shared by both configs; unknown keys are refused, not ignored."""

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        if not isinstance(data, dict):
            raise ConfigError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{cls.__name__} has no setting {', '.join(unknown)}.")
        return cls(**data)

    def with_overrides(self, overrides: dict[str, Any]):
        return type(self).from_dict({**self.to_dict(), **overrides})


@dataclass(frozen=True)
class NetworkConfig(_JsonConfig):
    """Architecture of :class:`~BreastSubtypeLib.model.network.SpatialMultiTaskNet`.

    ``attention_scales`` are stage indices (stage ``s`` runs at 1/2**(s+1) of the crop size).
    ``attention``: "multi" (one map per scale), "single" (one map, at the first scale), "none".
    ``use_peritumoral=False`` hides the peritumoral tissue from the network; ``core_only=True``
    shows it the tumour core only. ``shared_extractor=False`` gives each task its own extractor
    (widths scaled by ``task_extractor_width_factor``) while the ROI weighting and fusion stay shared;
    ``multi_task=False`` builds one independent network per task (nothing shared, so joint training
    equals training each separately).
    """

    in_channels: int = 4
    widths: tuple[int, ...] = (12, 24, 48, 96)
    blocks_per_stage: tuple[int, ...] = (1, 1, 2, 2)
    attention_scales: tuple[int, ...] = (1, 2, 3)
    attention: str = "multi"
    use_peritumoral: bool = True
    core_only: bool = False
    shared_extractor: bool = True
    multi_task: bool = True
    tasks: tuple[str, ...] = TASKS
    n_scalar_features: int = RECIPE_SCALAR_FEATURES
    norm: str = "instance"
    region_features: int = 64
    head_hidden: int = 64
    dropout: float = 0.2
    task_extractor_width_factor: float = 0.5
    region_weighting: str = "per_task"
    descriptor_norm: bool = False
    global_features: bool = True
    global_pool: str = "roi"
    # Grad-CAM's layer: stage 0, cells of 2 crop voxels (2 mm, wider where the crop zooms out for a
    # large lesion). Stage 1's 4-voxel cells, spread by upsampling, put up to 42 % of a map beyond
    # 10 mm of the ROIs around large lesions; stage 0 keeps at least 69 % on 60 phantoms with the
    # same weights (EVALUATION.md). Only the explanation changes: the layer is not a weight.
    cam_stage: int = 0
    fine_features: int = 0
    region_concat: bool = False
    intensity_statistics: bool = False
    scalar_norm: bool = True
    # A linear path from the standardised scalars to each logit (network.py), on since recipe 6: with
    # the Ki-67 deep path held small in training (TrainingConfig.deep_penalty) Ki-67 is read mainly
    # linearly from the margin profile, which on the development cohorts beat the deep read
    # (training/EVALUATION.md). Alone, without that penalty, it did not help Ki-67.
    scalar_skip: bool = True
    # Recipe 7: the extractor reads only tissue within this many mm of the visible ROIs (input and
    # every stage's features are zero beyond it), so no call and no Grad-CAM map can rest on tissue
    # farther away; runs without it put 28-50 % of some maps beyond 10 mm (EVALUATION.md). 0 reads
    # the whole crop. Needs the crop spacing (n_scalar_features >= 2).
    support_mm: float = 10.0
    # Numbers read on a log scale (log of the number, floored at LOG_NUMBER_FLOOR) before they are
    # standardised: the textures, whose spread the phantoms' heterogeneity sets multiplicatively,
    # so their log is the nearer-linear read. Recipe 9 logged the local texture (it lowered the
    # Ki-67 error in all six development runs), recipe 10 the profile texture too (EVALUATION.md).
    # () reads every number as it is (recipe 8).
    log_numbers: tuple[str, ...] = ("tumour_local_texture", "tumour_profile_texture")
    # Standardised numbers are held within +- this many training SDs (0: not held), in training and
    # inference alike: the linear path reads a number in proportion, so one case far outside the
    # training cohort would otherwise extrapolate a call far beyond any it was trained on. Only
    # with scalar_norm (the SDs are its running statistics).
    scalar_limit_sd: float = NUMBER_LIMIT_SD

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise lists from JSON into tuples once, here
        if self.in_channels != len(INPUT_CHANNELS):
            raise ConfigError(
                f"in_channels must be {len(INPUT_CHANNELS)} ({', '.join(INPUT_CHANNELS)}), "
                f"got {self.in_channels!r}."
            )
        set_(self, "widths", _positive_int_tuple("widths", self.widths))
        set_(
            self,
            "blocks_per_stage",
            _positive_int_tuple("blocks_per_stage", self.blocks_per_stage, len(self.widths)),
        )
        scales = tuple(self.attention_scales)
        if (
            not scales
            or len(set(scales)) != len(scales)
            or list(scales) != sorted(scales)
            or any(
                isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < len(self.widths) for s in scales
            )
        ):
            raise ConfigError(
                f"attention_scales must be increasing stage indices in 0..{len(self.widths) - 1}, "
                f"got {self.attention_scales!r}."
            )
        set_(self, "attention_scales", scales)
        _choice("attention", self.attention, ATTENTION_MODES)
        if self.attention == "multi" and len(scales) < 2:
            raise ConfigError(f"attention 'multi' needs at least two attention_scales, got {scales!r}.")
        for name in (
            "use_peritumoral",
            "core_only",
            "shared_extractor",
            "multi_task",
            "descriptor_norm",
            "global_features",
            "region_concat",
            "intensity_statistics",
            "scalar_norm",
            "scalar_skip",
        ):
            _bool(name, getattr(self, name))
        tasks = tuple(self.tasks) if isinstance(self.tasks, list | tuple) else ()
        if not tasks or len(set(tasks)) != len(tasks) or any(t not in TASKS for t in tasks):
            raise ConfigError(f"tasks must be distinct names among {', '.join(TASKS)}, got {self.tasks!r}.")
        set_(self, "tasks", tuple(t for t in TASKS if t in tasks))  # canonical order
        if not self.multi_task and self.shared_extractor:
            raise ConfigError(
                "multi_task false builds independent single-task networks, so shared_extractor "
                "must be false too."
            )
        if (
            isinstance(self.n_scalar_features, bool)
            or not isinstance(self.n_scalar_features, int)
            or self.n_scalar_features < 0
        ):
            raise ConfigError(
                f"n_scalar_features must be a non-negative integer, got {self.n_scalar_features!r}."
            )
        if self.n_scalar_features > len(SCALAR_FEATURES):
            raise ConfigError(
                f"n_scalar_features must be at most {len(SCALAR_FEATURES)} (the size features and the "
                f"margin profile), got {self.n_scalar_features!r}."
            )
        _choice("norm", self.norm, NORMS)
        _positive_int_tuple("region_features", (self.region_features,))
        _positive_int_tuple("head_hidden", (self.head_hidden,))
        if (
            isinstance(self.dropout, bool)
            or not isinstance(self.dropout, int | float)
            or not 0 <= self.dropout < 1
        ):
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout!r}.")
        _choice("region_weighting", self.region_weighting, REGION_WEIGHTINGS)
        _choice("global_pool", self.global_pool, GLOBAL_POOLS)
        if (
            isinstance(self.fine_features, bool)
            or not isinstance(self.fine_features, int)
            or self.fine_features < 0
        ):
            raise ConfigError(f"fine_features must be a non-negative integer, got {self.fine_features!r}.")
        # The heads read the pooled attention scales and, with global features, the last stage; every
        # stage up to the deepest one read feeds them through the convolutions, and none beyond it.
        deepest_read = len(self.widths) - 1 if self.global_features else max(scales)
        if (
            isinstance(self.cam_stage, bool)
            or not isinstance(self.cam_stage, int)
            or not 0 <= self.cam_stage <= deepest_read
        ):
            raise ConfigError(
                f"cam_stage must be a stage index in 0..{deepest_read} that the heads depend on, "
                f"got {self.cam_stage!r}."
            )
        if (
            isinstance(self.support_mm, bool)
            or not isinstance(self.support_mm, int | float)
            or not 0 <= self.support_mm < math.inf
        ):
            raise ConfigError(f"support_mm must be zero or a positive number of mm, got {self.support_mm!r}.")
        if (
            isinstance(self.scalar_limit_sd, bool)
            or not isinstance(self.scalar_limit_sd, int | float)
            or not 0 <= self.scalar_limit_sd < math.inf
        ):
            raise ConfigError(
                f"scalar_limit_sd must be zero or a positive number of SDs, got {self.scalar_limit_sd!r}."
            )
        logged = tuple(self.log_numbers) if isinstance(self.log_numbers, list | tuple) else None
        if logged is None or len(set(logged)) != len(logged) or any(n not in SCALAR_FEATURES for n in logged):
            raise ConfigError(
                f"log_numbers must be distinct names among {', '.join(SCALAR_FEATURES)}; "
                f"got {self.log_numbers!r}."
            )
        # Canonical order; a name beyond n_scalar_features is kept but has nothing to act on.
        set_(self, "log_numbers", tuple(name for name in SCALAR_FEATURES if name in logged))
        if self.support_mm and self.n_scalar_features < len(SIZE_FEATURES):
            raise ConfigError(
                f"support_mm needs the crop spacing: n_scalar_features must be at least {len(SIZE_FEATURES)}."
            )
        factor = _positive_float("task_extractor_width_factor", self.task_extractor_width_factor)
        if factor > 1:
            raise ConfigError(f"task_extractor_width_factor must be at most 1, got {factor!r}.")

    @classmethod
    def from_package(cls, data: dict[str, Any]) -> NetworkConfig:
        """The config stored in a model package; settings the package predates take the values that
        reproduce the network it was trained as (so older packages load and predict unchanged)."""
        if not isinstance(data, dict):
            return cls.from_dict(data)
        widths = data.get("widths", cls.widths)
        before = {
            "region_weighting": "shared",
            "descriptor_norm": False,
            "global_features": True,
            "global_pool": "crop",
            "cam_stage": len(widths) - 1 if isinstance(widths, list | tuple) else 3,
            "fine_features": 0,
            "region_concat": False,
            "intensity_statistics": False,
            "n_scalar_features": len(SIZE_FEATURES),
            "scalar_norm": False,
            "scalar_skip": False,
            "support_mm": 0.0,
            "log_numbers": (),
            "scalar_limit_sd": 0.0,
        }
        return cls.from_dict({**{k: v for k, v in before.items() if k not in data}, **data})

    @property
    def visible_regions(self) -> tuple[bool, bool, bool]:
        """Which of core, rim, peritumoral the network may see."""
        if self.core_only:
            return (True, False, False)
        return (True, True, self.use_peritumoral)


@dataclass(frozen=True)
class PreprocessingConfig(_JsonConfig):
    """How a case becomes the network's input crop (THE preprocessing, training and inference alike).

    The crop is a cube of ``crop_size_voxels`` with isotropic spacing, axis-aligned with the input's
    axes and centred on the tumour. ``fov_mode="adaptive"``: the field of view is
    ``fov_margin_factor`` × the largest extent (mm) of tumour plus peritumoral band, but never smaller
    than ``crop_size_voxels × target_spacing_mm`` (so small lesions are seen at ``target_spacing_mm``
    and large ones are zoomed out to fit). ``"fixed"``: always ``target_spacing_mm``.
    Intensities: ``"percentile"`` maps the ``percentiles`` of the crop's in-image voxels to [0, 1]
    and clips to ``clip_range``; ``"zscore"`` uses their mean and standard deviation.
    ``rim_mm``/``peri_mm`` are the ROI widths the model was trained with.
    """

    target_spacing_mm: float = 1.0
    crop_size_voxels: tuple[int, int, int] = (32, 32, 32)
    fov_mode: str = "adaptive"
    fov_margin_factor: float = 1.5
    normalisation: str = "percentile"
    percentiles: tuple[float, float] = (1.0, 99.0)
    clip_range: tuple[float, float] = (-0.5, 1.5)
    rim_mm: float = 3.0
    peri_mm: float = 5.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        _positive_float("target_spacing_mm", self.target_spacing_mm)
        sizes = _positive_int_tuple("crop_size_voxels", self.crop_size_voxels, 3)
        if any(s < 16 or s % 16 for s in sizes):
            raise ConfigError(
                f"crop_size_voxels must be multiples of 16 (the network halves them 4 times), "
                f"got {self.crop_size_voxels!r}."
            )
        set_(self, "crop_size_voxels", sizes)
        _choice("fov_mode", self.fov_mode, FOV_MODES)
        if _positive_float("fov_margin_factor", self.fov_margin_factor) < 1:
            raise ConfigError(f"fov_margin_factor must be at least 1, got {self.fov_margin_factor!r}.")
        _choice("normalisation", self.normalisation, NORMALISATIONS)
        for name in ("percentiles", "clip_range"):
            pair = getattr(self, name)
            try:
                low, high = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise ConfigError(f"{name} must be two numbers, got {pair!r}.") from None
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ConfigError(f"{name} must be two increasing finite numbers, got {pair!r}.")
            set_(self, name, (low, high))
        if not 0 <= self.percentiles[0] < self.percentiles[1] <= 100:
            raise ConfigError(f"percentiles must lie in [0, 100], got {self.percentiles!r}.")
        _positive_float("rim_mm", self.rim_mm)
        _positive_float("peri_mm", self.peri_mm)


# The paper's ablations (SPEC §1) as overrides of the full model's NetworkConfig.
ABLATIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "no_attention": {"attention": "none"},
    "single_scale_attention": {"attention": "single"},
    "no_peritumoral": {"use_peritumoral": False},
    "core_only": {"core_only": True, "use_peritumoral": False},
    "single_task": {"multi_task": False, "shared_extractor": False},
    "no_shared_extractor": {"shared_extractor": False},
}


def ablation_config(name: str, base: NetworkConfig | None = None) -> NetworkConfig:
    """The NetworkConfig of one ablation variant, applied on ``base`` (default: the full model)."""
    if name not in ABLATIONS:
        raise ConfigError(f"Unknown ablation {name!r}; choose one of {', '.join(ABLATIONS)}.")
    return (base or NetworkConfig()).with_overrides(ABLATIONS[name])


__all__ = [
    "ABLATIONS",
    "INPUT_CHANNELS",
    "LOG_NUMBER_FLOOR",
    "REGIONS",
    "SCALAR_FEATURES",
    "TASKS",
    "TASK_OUTPUT_KEYS",
    "ConfigError",
    "NetworkConfig",
    "PreprocessingConfig",
    "ablation_config",
]
