"""Biomarkers of a phantom tumour and the latent imaging features that carry them.

Every case draws five independent standard-normal latent features ``z``; the lesion's appearance is
rendered from them (``lesion.py``) and the labels are drawn from them with logistic models, so the
imaging determines the labels only up to the irreducible noise of those models:

==========================  =====================================================  ==================
latent feature              rendered as                                            where it is seen
==========================  =====================================================  ==================
``rim_enhancement``         bright rim, darker (washout-like) core, central        tumour rim vs core
                            necrosis when high
``peritumoral_oedema``      enhancement/oedema in the 0-6 mm band outside the      peritumoral band
                            tumour (nothing inside the tumour depends on it)       only
``margin_spiculation``      spicules and lobulated, irregular margins              tumour margin
``internal_heterogeneity``  amplitude of the enhancement texture inside the tumour  tumour (core)
``lesion_size``             lesion diameter 8-35 mm (or as given)                  whole lesion
==========================  =====================================================  ==================

Label models (sigmoid = logistic function; biases ``b_*`` are solved at first use by Gauss-Hermite
quadrature so that the prevalences below hold exactly in expectation):

- ER:   P(ER+) = sigmoid(b_er + 1.9 * margin_spiculation - 1.9 * rim_enhancement),  prevalence 70 %
  (luminal tumours are spiculated; rim enhancement with necrosis goes with triple-negative).
- PR:   P(PR+ | ER+) = sigmoid(b_pr + 1.6 * margin_spiculation - 0.8 * internal_heterogeneity);
  P(PR+ | ER-) = 0.06; overall prevalence 60 %, mostly within ER+.
- HER2: P(HER2+) = sigmoid(b_her2 + 3.0 * peritumoral_oedema), prevalence 20 %: the HER2 signal
  lives ONLY in the peritumoral band, so a model blind to that band must lose it.
- Ki-67 (percent): log(Ki-67) = log(16) + 0.40 * peritumoral_oedema + 0.30 * internal_heterogeneity
  + 0.25 * rim_enhancement + e, e ~ N(0, 0.30²), clipped to [1, 95]: skewed, mostly 5-60 %,
  higher with HER2+ and triple-negative tumours, part of its signal in the peritumoral band.
- PR percent (for the St Gallen 2013 PR >= 20 % rule) is 0 for PR- and 1 + 99 * Beta(2, 1.2) for
  PR+; it is not imaged.

A cohort may ask for other prevalences (``prevalence={"er": 0.45, "her2": 0.3}``, see
``check_prevalence``): the biases are solved again for them and every weight above is kept, so the
imaging correlates stay what they are and only the base rates move.

``true_probabilities`` are these sigmoids given the case's latent features, i.e. the best any
model can do from the image (their AUC is the achievable ceiling); ``ki67_expected`` is
E[Ki-67 | z] = exp(m + s²/2) and ``ki67_noise_sd`` the SD of the log-normal noise around it, in
percent points.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.phantom.checks import number_in

LATENT_FEATURES = (
    "rim_enhancement",
    "peritumoral_oedema",
    "margin_spiculation",
    "internal_heterogeneity",
    "lesion_size",
)

PREVALENCE = {"er": 0.70, "pr": 0.60, "her2": 0.20}
DEFAULT_PREVALENCE = (PREVALENCE["er"], PREVALENCE["pr"], PREVALENCE["her2"])
ER_WEIGHTS = {"margin_spiculation": 1.9, "rim_enhancement": -1.9}
PR_WEIGHTS_IF_ER_POSITIVE = {"margin_spiculation": 1.6, "internal_heterogeneity": -0.8}
PR_PROBABILITY_IF_ER_NEGATIVE = 0.06
HER2_WEIGHTS = {"peritumoral_oedema": 3.0}
KI67_LOG_MEDIAN = math.log(16.0)
KI67_LOG_WEIGHTS = {"peritumoral_oedema": 0.40, "internal_heterogeneity": 0.30, "rim_enhancement": 0.25}
KI67_LOG_NOISE_SD = 0.30
KI67_RANGE_PERCENT = (1.0, 95.0)


@dataclass(frozen=True)
class Biomarkers:
    """Receptor status (1 positive, 0 negative) and Ki-67 / PR staining in percent."""

    er: int
    pr: int
    her2: int
    ki67_percent: float
    pr_percent: float

    def as_dict(self) -> dict:
        return asdict(self)

    def __getitem__(self, name: str):  # case.biomarkers["er"] reads like a manifest row
        return getattr(self, name)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _linear(z: dict, weights: dict):
    return sum(w * z[name] for name, w in weights.items())


def check_prevalence(prevalence: dict | None) -> tuple[float, float, float]:
    """(er, pr, her2) prevalences: ``PREVALENCE`` overridden by ``prevalence``; a clear error if
    one is unknown or not achievable (PR+ lies mostly within ER+, so PR must stay below ER plus the
    PR+ fraction of ER- tumours)."""
    given = dict(prevalence or {})
    unknown = set(given) - set(PREVALENCE)
    if unknown:
        raise BadInputError(f"unknown prevalences {sorted(unknown)}; expected some of {sorted(PREVALENCE)}.")
    merged = {**PREVALENCE}
    for name, value in given.items():
        merged[name] = number_in(value, f"the prevalence of {name}", 0.02, 0.98)
    er, pr, her2 = merged["er"], merged["pr"], merged["her2"]
    low = (1 - er) * PR_PROBABILITY_IF_ER_NEGATIVE
    if not low + 0.01 <= pr <= er + low - 0.01:
        raise BadInputError(
            f"a PR prevalence of {pr:g} is not possible with ER {er:g}: it must lie between "
            f"{low + 0.01:.2f} and {er + low - 0.01:.2f} (PR+ tumours are mostly ER+)."
        )
    return er, pr, her2


@functools.cache
def _biases(prevalence: tuple[float, float, float] = DEFAULT_PREVALENCE) -> dict[str, float]:
    """Solve the three biases so the prior prevalences (er, pr, her2) hold (deterministic
    quadrature, ~ms per set of prevalences)."""
    prevalence = dict(zip(("er", "pr", "her2"), prevalence))
    nodes, weights = np.polynomial.hermite_e.hermegauss(48)
    weights = weights / weights.sum()

    def solve(expectation, target):
        low, high = -20.0, 20.0
        for _ in range(60):
            mid = 0.5 * (low + high)
            low, high = (mid, high) if expectation(mid) < target else (low, mid)
        return 0.5 * (low + high)

    def one_dim(slope):  # E[sigmoid(b + slope * N(0,1))]
        return lambda b: float(np.sum(weights * _sigmoid(b + slope * nodes)))

    er_slope = math.hypot(*ER_WEIGHTS.values())
    b_er = solve(one_dim(er_slope), prevalence["er"])
    b_her2 = solve(one_dim(math.hypot(*HER2_WEIGHTS.values())), prevalence["her2"])

    # PR+ overall = E[P(ER+) P(PR+|ER+)] + E[1 - P(ER+)] * 0.06; spiculation is shared, so 3-D grid.
    spic, rim, het = np.meshgrid(nodes, nodes, nodes, indexing="ij")
    grid_weights = weights[:, None, None] * weights[None, :, None] * weights[None, None, :]
    z = {"margin_spiculation": spic, "rim_enhancement": rim, "internal_heterogeneity": het}
    p_er = _sigmoid(b_er + _linear(z, ER_WEIGHTS))
    target = prevalence["pr"] - (1 - prevalence["er"]) * PR_PROBABILITY_IF_ER_NEGATIVE
    pr_lin = _linear(z, PR_WEIGHTS_IF_ER_POSITIVE)
    b_pr = solve(lambda b: float(np.sum(grid_weights * p_er * _sigmoid(b + pr_lin))), target)
    return {"er": b_er, "pr": b_pr, "her2": b_her2}


def label_model(z: dict, prevalence: tuple[float, float, float] = DEFAULT_PREVALENCE) -> dict:
    """Probabilities and Ki-67 moments given latent features (scalars or arrays of equal shape),
    for a cohort whose prevalences are ``prevalence`` = (er, pr, her2) (see ``check_prevalence``)."""
    b = _biases(tuple(prevalence))
    p_er = _sigmoid(b["er"] + _linear(z, ER_WEIGHTS))
    p_pr_if_er = _sigmoid(b["pr"] + _linear(z, PR_WEIGHTS_IF_ER_POSITIVE))
    p_her2 = _sigmoid(b["her2"] + _linear(z, HER2_WEIGHTS))
    ki67_log_mean = KI67_LOG_MEDIAN + _linear(z, KI67_LOG_WEIGHTS)
    s2 = KI67_LOG_NOISE_SD**2
    ki67_expected = np.exp(ki67_log_mean + s2 / 2)
    return {
        "er": p_er,
        "pr_if_er_positive": p_pr_if_er,
        "pr": p_er * p_pr_if_er + (1 - p_er) * PR_PROBABILITY_IF_ER_NEGATIVE,
        "her2": p_her2,
        "ki67_log_mean": ki67_log_mean,
        "ki67_expected": ki67_expected,
        "ki67_noise_sd": ki67_expected * math.sqrt(math.expm1(s2)),
    }


def sample_latents(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    draws = rng.standard_normal((len(LATENT_FEATURES), n))
    return {name: draws[i] for i, name in enumerate(LATENT_FEATURES)}


def sample_labels(
    rng: np.random.Generator, z: dict, given: dict | None = None, prevalence=DEFAULT_PREVALENCE
) -> dict[str, np.ndarray]:
    """Draw er, pr, her2, ki67_percent, pr_percent for each set of latent features (vectorised).

    Labels in ``given`` are kept as they are and the others drawn conditionally on them (PR depends
    on ER); the number of random draws never depends on ``given``.
    """
    given = {k: v for k, v in (given or {}).items() if v is not None}
    model = label_model(z, prevalence)
    n = np.shape(model["er"])[0]
    u = rng.random((3, n))
    noise = rng.standard_normal(n)
    beta = rng.beta(2.0, 1.2, n)
    er = np.full(n, int(given["er"])) if "er" in given else (u[0] < model["er"]).astype(int)
    pr_probability = np.where(er == 1, model["pr_if_er_positive"], PR_PROBABILITY_IF_ER_NEGATIVE)
    pr = np.full(n, int(given["pr"])) if "pr" in given else (u[1] < pr_probability).astype(int)
    her2 = np.full(n, int(given["her2"])) if "her2" in given else (u[2] < model["her2"]).astype(int)
    ki67 = np.clip(np.exp(model["ki67_log_mean"] + KI67_LOG_NOISE_SD * noise), *KI67_RANGE_PERCENT)
    if "ki67_percent" in given:
        ki67 = np.full(n, float(given["ki67_percent"]))
    pr_percent = np.where(pr == 1, 1.0 + 99.0 * beta, 0.0)
    if "pr_percent" in given:
        pr_percent = np.full(n, float(given["pr_percent"]))
    return {"er": er, "pr": pr, "her2": her2, "ki67_percent": ki67, "pr_percent": pr_percent}


def sample_biomarkers(rng: np.random.Generator, n: int, prevalence=DEFAULT_PREVALENCE) -> tuple[dict, dict]:
    """Latent features and labels of ``n`` independent cases from the prior (no images: fast)."""
    z = sample_latents(rng, n)
    return z, sample_labels(rng, z, prevalence=prevalence)


def _likelihood(z: dict, wanted: dict, prevalence) -> np.ndarray:
    """P(wanted labels | z), scaled to at most 1 (Ki-67 density relative to its mode)."""
    model = label_model(z, prevalence)
    like = np.ones_like(model["er"])
    if wanted.get("er") is not None:
        like = like * (model["er"] if wanted["er"] else 1 - model["er"])
    if wanted.get("pr") is not None:
        if wanted.get("er") is None:
            p_pr = model["pr"]
        else:
            p_pr = model["pr_if_er_positive"] if wanted["er"] else PR_PROBABILITY_IF_ER_NEGATIVE
        like = like * (p_pr if wanted["pr"] else 1 - p_pr)
    if wanted.get("her2") is not None:
        like = like * (model["her2"] if wanted["her2"] else 1 - model["her2"])
    if wanted.get("ki67_percent") is not None:
        log_ki67 = math.log(min(max(float(wanted["ki67_percent"]), 0.5), 100.0))
        like = like * np.exp(-0.5 * ((log_ki67 - model["ki67_log_mean"]) / KI67_LOG_NOISE_SD) ** 2)
    return like


def sample_latents_given(
    rng: np.random.Generator, wanted: dict, fixed: dict | None = None, prevalence=DEFAULT_PREVALENCE
) -> dict:
    """One set of latent features drawn from p(z | wanted labels) by rejection sampling.

    ``wanted`` may hold er/pr/her2 (0/1) and ki67_percent; missing keys are unconstrained. ``fixed``
    pins some latent features to given values (the rest are sampled).
    """
    fixed = fixed or {}
    for _ in range(200):
        z = sample_latents(rng, 4096)
        for name, value in fixed.items():
            z[name] = np.full(4096, float(value))
        accept = rng.random(4096) < _likelihood(z, wanted, prevalence)
        if accept.any():
            index = int(np.argmax(accept))
            return {name: float(values[index]) for name, values in z.items()}
    raise ValueError(f"biomarkers {wanted} are practically impossible with imaging features {fixed}")
