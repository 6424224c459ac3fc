"""Surrogate molecular subtype from ER, PR, HER2 and Ki-67 (St Gallen consensus schemes).

``st_gallen_2013`` (default): Luminal A-like needs ER or PR positive, HER2 negative, Ki-67 < 20 %
and PR positive, with PR >= 20 % where the PR percent is known; any other hormone-receptor
positive, HER2-negative tumour is Luminal B-like (HER2-negative).
``st_gallen_2011``: Luminal A-like needs ER and/or PR positive, HER2 negative and Ki-67 < 14 %.
In both, hormone-receptor positive and HER2 positive is Luminal B-like (HER2-positive) whatever
Ki-67; HER2 positive without hormone receptors is HER2-enriched (non-luminal); negative for all
three is triple-negative. Cut-offs are strict: Ki-67 exactly 20 % is not < 20 %, so Luminal B-like.

>>> surrogate_subtype(True, True, False, 12.0).name
'Luminal A-like'
>>> surrogate_subtype(True, True, False, 20.0).name
'Luminal B-like (HER2-negative)'
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

LUMINAL_A = "Luminal A-like"
LUMINAL_B_HER2_NEGATIVE = "Luminal B-like (HER2-negative)"
LUMINAL_B_HER2_POSITIVE = "Luminal B-like (HER2-positive)"
HER2_ENRICHED = "HER2-enriched (non-luminal)"
TRIPLE_NEGATIVE = "Triple-negative"
SUBTYPES = (LUMINAL_A, LUMINAL_B_HER2_NEGATIVE, LUMINAL_B_HER2_POSITIVE, HER2_ENRICHED, TRIPLE_NEGATIVE)
UNCERTAIN_BELOW_PROBABILITY = 0.7


@dataclass(frozen=True)
class SubtypeScheme:
    title: str
    ki67_cutoff_percent: float  # Luminal A-like needs Ki-67 strictly below this
    pr_required: bool  # Luminal A-like needs PR positive
    pr_cutoff_percent: float | None  # ... and at least this PR percent where it is known


SCHEMES = {
    "st_gallen_2013": SubtypeScheme("St Gallen 2013", 20.0, True, 20.0),
    "st_gallen_2011": SubtypeScheme("St Gallen 2011", 14.0, False, None),
}
DEFAULT_SCHEME = "st_gallen_2013"


@dataclass(frozen=True)
class SubtypeCall:
    name: str
    scheme: str
    reason: str


def scheme_rules(scheme: str) -> SubtypeScheme:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown subtype scheme {scheme!r}; expected one of {sorted(SCHEMES)}")
    return SCHEMES[scheme]


def surrogate_subtype(
    er_positive: bool,
    pr_positive: bool,
    her2_positive: bool,
    ki67_percent: float,
    *,
    pr_percent: float | None = None,
    scheme: str = DEFAULT_SCHEME,
) -> SubtypeCall:
    """The surrogate subtype of a tumour with known receptor status (hard call, with its reason)."""
    rules = scheme_rules(scheme)
    if ki67_percent is None or not math.isfinite(float(ki67_percent)) or not 0 <= float(ki67_percent) <= 100:
        raise ValueError(f"ki67_percent must be a number between 0 and 100, got {ki67_percent!r}")
    ki67_percent = float(ki67_percent)
    hormone_receptors = bool(er_positive) or bool(pr_positive)
    if bool(her2_positive):
        if hormone_receptors:
            return SubtypeCall(LUMINAL_B_HER2_POSITIVE, scheme, "ER/PR positive and HER2 positive")
        return SubtypeCall(HER2_ENRICHED, scheme, "ER and PR negative, HER2 positive")
    if not hormone_receptors:
        return SubtypeCall(TRIPLE_NEGATIVE, scheme, "ER, PR and HER2 negative")
    cutoff = rules.ki67_cutoff_percent
    if ki67_percent >= cutoff:
        return SubtypeCall(
            LUMINAL_B_HER2_NEGATIVE,
            scheme,
            f"ER/PR positive, HER2 negative, Ki-67 {ki67_percent:g} % >= {cutoff:g} %",
        )
    if rules.pr_required and not bool(pr_positive):
        return SubtypeCall(LUMINAL_B_HER2_NEGATIVE, scheme, "ER positive, HER2 negative, PR negative")
    if (
        rules.pr_cutoff_percent is not None
        and pr_percent is not None
        and pr_percent < rules.pr_cutoff_percent
    ):
        return SubtypeCall(
            LUMINAL_B_HER2_NEGATIVE,
            scheme,
            f"ER/PR positive, HER2 negative, PR {pr_percent:g} % < {rules.pr_cutoff_percent:g} %",
        )
    return SubtypeCall(
        LUMINAL_A, scheme, f"ER/PR positive, HER2 negative, Ki-67 {ki67_percent:g} % < {cutoff:g} %"
    )


def subtype_from_probabilities(
    p_er: float,
    p_pr: float,
    p_her2: float,
    ki67_percent: float,
    *,
    thresholds: dict | None = None,
    scheme: str = DEFAULT_SCHEME,
    ki67_uncertainty_percent: float | None = None,
) -> dict:
    """The subtype a model's outputs imply, with how sure that call is.

    The hard call (``name``) applies the operating ``thresholds`` (default 0.5 each) to the three
    probabilities. ``probability`` is the chance of that subtype when the receptor probabilities
    are taken as calibrated and independent: the 8 receptor combinations are enumerated, each with
    its probability, and Ki-67 is taken as given; ``alternatives`` holds every subtype's share
    (they sum to 1). With thresholds other than 0.5 the hard call need not be the most probable
    subtype. ``uncertain`` is True when that probability is below 0.7, or when the call depends on
    Ki-67 (hormone-receptor positive, HER2 negative) and Ki-67 lies within
    ``ki67_uncertainty_percent`` of the scheme's cut-off.
    """
    rules = scheme_rules(scheme)
    thresholds = {"er": 0.5, "pr": 0.5, "her2": 0.5, **(thresholds or {})}
    probabilities = {"er": float(p_er), "pr": float(p_pr), "her2": float(p_her2)}
    for task, value in probabilities.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"p_{task} must be a probability in [0, 1], got {value!r}")
    call = surrogate_subtype(
        *(probabilities[t] >= thresholds[t] for t in ("er", "pr", "her2")), ki67_percent, scheme=scheme
    )
    alternatives = dict.fromkeys(SUBTYPES, 0.0)
    for status in itertools.product((True, False), repeat=3):
        chance = math.prod(p if positive else 1.0 - p for p, positive in zip(probabilities.values(), status))
        alternatives[surrogate_subtype(*status, ki67_percent, scheme=scheme).name] += chance
    probability = alternatives[call.name]
    reasons = []
    if probability < UNCERTAIN_BELOW_PROBABILITY:
        reasons.append(f"p = {probability:.2f} < {UNCERTAIN_BELOW_PROBABILITY}")
    depends_on_ki67 = call.name in (LUMINAL_A, LUMINAL_B_HER2_NEGATIVE)
    if (
        depends_on_ki67
        and ki67_uncertainty_percent is not None
        and abs(float(ki67_percent) - rules.ki67_cutoff_percent) <= float(ki67_uncertainty_percent)
    ):
        reasons.append(
            f"Ki-67 within {float(ki67_uncertainty_percent):g} points of the "
            f"{rules.ki67_cutoff_percent:g} % cut-off"
        )
    reason = f"{call.reason} (thresholds ER {thresholds['er']:g}, PR {thresholds['pr']:g}, HER2 {thresholds['her2']:g})"
    if reasons:
        reason += "; uncertain: " + "; ".join(reasons)
    return {
        "name": call.name,
        "scheme": scheme,
        "probability": probability,
        "alternatives": dict(sorted(alternatives.items(), key=lambda item: -item[1])),
        "uncertain": bool(reasons),
        "reason": reason,
    }
