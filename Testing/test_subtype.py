"""Surrogate subtype rules: every branch and boundary of both St Gallen schemes, and the
probability enumeration over receptor combinations."""

import itertools
import math

import pytest

from BreastSubtypeLib.subtype import (
    HER2_ENRICHED,
    LUMINAL_A,
    LUMINAL_B_HER2_NEGATIVE,
    LUMINAL_B_HER2_POSITIVE,
    SCHEMES,
    SUBTYPES,
    TRIPLE_NEGATIVE,
    subtype_from_probabilities,
    surrogate_subtype,
)

# (er, pr, her2, ki67_percent, pr_percent, scheme, expected)
RULES = [
    (1, 1, 0, 19.9, None, "st_gallen_2013", LUMINAL_A),
    (1, 1, 0, 20.0, None, "st_gallen_2013", LUMINAL_B_HER2_NEGATIVE),  # 20 is not < 20
    (1, 1, 0, 0.0, 20.0, "st_gallen_2013", LUMINAL_A),  # PR exactly 20 % is enough
    (1, 1, 0, 10.0, 19.9, "st_gallen_2013", LUMINAL_B_HER2_NEGATIVE),  # PR low
    (1, 0, 0, 10.0, None, "st_gallen_2013", LUMINAL_B_HER2_NEGATIVE),  # PR negative
    (0, 1, 0, 10.0, None, "st_gallen_2013", LUMINAL_A),  # PR alone makes it hormone-receptor positive
    (1, 1, 1, 5.0, None, "st_gallen_2013", LUMINAL_B_HER2_POSITIVE),  # whatever Ki-67
    (0, 1, 1, 50.0, None, "st_gallen_2013", LUMINAL_B_HER2_POSITIVE),
    (0, 0, 1, 5.0, None, "st_gallen_2013", HER2_ENRICHED),
    (0, 0, 0, 5.0, None, "st_gallen_2013", TRIPLE_NEGATIVE),
    (0, 0, 0, 90.0, None, "st_gallen_2013", TRIPLE_NEGATIVE),
    (1, 1, 0, 13.9, None, "st_gallen_2011", LUMINAL_A),
    (1, 1, 0, 14.0, None, "st_gallen_2011", LUMINAL_B_HER2_NEGATIVE),  # 14 is not < 14
    (1, 0, 0, 10.0, None, "st_gallen_2011", LUMINAL_A),  # 2011 does not require PR
    (1, 1, 0, 10.0, 5.0, "st_gallen_2011", LUMINAL_A),  # nor a PR percent
    (1, 0, 1, 10.0, None, "st_gallen_2011", LUMINAL_B_HER2_POSITIVE),
    (0, 0, 1, 10.0, None, "st_gallen_2011", HER2_ENRICHED),
    (0, 0, 0, 10.0, None, "st_gallen_2011", TRIPLE_NEGATIVE),
]


@pytest.mark.parametrize("er, pr, her2, ki67, pr_percent, scheme, expected", RULES)
def test_surrogate_subtype_rules(er, pr, her2, ki67, pr_percent, scheme, expected):
    call = surrogate_subtype(er, pr, her2, ki67, pr_percent=pr_percent, scheme=scheme)
    assert (call.name, call.scheme) == (expected, scheme)
    assert call.reason


def test_schemes_differ_only_in_their_cut_offs():
    assert SCHEMES["st_gallen_2013"].ki67_cutoff_percent == 20.0
    assert SCHEMES["st_gallen_2011"].ki67_cutoff_percent == 14.0
    assert surrogate_subtype(True, True, False, 17.0, scheme="st_gallen_2013").name == LUMINAL_A
    assert surrogate_subtype(True, True, False, 17.0, scheme="st_gallen_2011").name == LUMINAL_B_HER2_NEGATIVE


@pytest.mark.parametrize(
    "bad", [{"scheme": "st_gallen_2099"}, {"ki67": -1.0}, {"ki67": 101.0}, {"ki67": math.nan}, {"ki67": None}]
)
def test_surrogate_subtype_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        surrogate_subtype(
            True, True, False, bad.get("ki67", 10.0), scheme=bad.get("scheme", "st_gallen_2013")
        )


@pytest.mark.parametrize("p", list(itertools.product((0.0, 0.3, 0.55, 1.0), repeat=3)))
def test_alternatives_sum_to_one(p):
    result = subtype_from_probabilities(*p, 25.0)
    assert set(result["alternatives"]) == set(SUBTYPES)
    assert sum(result["alternatives"].values()) == pytest.approx(1.0, abs=1e-12)
    assert result["probability"] == result["alternatives"][result["name"]]


def test_probability_enumerates_independent_receptors():
    # ER 0.8, PR 0.5, HER2 0.1, Ki-67 10 % (2013): HR+ = 1 - 0.2 * 0.5 = 0.9.
    result = subtype_from_probabilities(0.8, 0.5, 0.1, 10.0)
    alternatives = result["alternatives"]
    assert alternatives[LUMINAL_B_HER2_POSITIVE] == pytest.approx(0.9 * 0.1)
    assert alternatives[HER2_ENRICHED] == pytest.approx(0.1 * 0.1)
    assert alternatives[TRIPLE_NEGATIVE] == pytest.approx(0.1 * 0.9)
    assert alternatives[LUMINAL_A] == pytest.approx(0.5 * 0.9)  # needs PR+ in 2013
    assert alternatives[LUMINAL_B_HER2_NEGATIVE] == pytest.approx(0.8 * 0.5 * 0.9)  # ER+ PR-
    assert result["name"] == LUMINAL_A  # PR 0.5 >= threshold 0.5
    assert result["probability"] == pytest.approx(0.45)
    assert result["uncertain"] is True


def test_confident_call_is_not_uncertain():
    result = subtype_from_probabilities(0.02, 0.03, 0.01, 60.0)
    assert result["name"] == TRIPLE_NEGATIVE
    assert result["probability"] == pytest.approx(0.98 * 0.97 * 0.99)
    assert result["uncertain"] is False
    assert result["scheme"] == "st_gallen_2013"


def test_hard_call_uses_the_thresholds():
    assert subtype_from_probabilities(0.3, 0.1, 0.0, 5.0)["name"] == TRIPLE_NEGATIVE
    result = subtype_from_probabilities(0.3, 0.1, 0.0, 5.0, thresholds={"er": 0.25, "pr": 0.05, "her2": 0.5})
    assert result["name"] == LUMINAL_A
    # the threshold-based call need not be the most probable subtype
    assert result["probability"] < result["alternatives"][TRIPLE_NEGATIVE]


@pytest.mark.parametrize(
    "ki67, uncertainty, uncertain",
    [(22.0, 3.0, True), (23.0, 3.0, True), (23.1, 3.0, False), (22.0, None, False)],
)
def test_ki67_near_the_cut_off_is_uncertain(ki67, uncertainty, uncertain):
    result = subtype_from_probabilities(0.99, 0.99, 0.001, ki67, ki67_uncertainty_percent=uncertainty)
    assert result["name"] == LUMINAL_B_HER2_NEGATIVE
    assert result["uncertain"] is uncertain


def test_ki67_uncertainty_does_not_matter_when_the_call_ignores_ki67():
    result = subtype_from_probabilities(0.01, 0.01, 0.01, 20.0, ki67_uncertainty_percent=5.0)
    assert result["name"] == TRIPLE_NEGATIVE and result["uncertain"] is False


def test_probability_out_of_range_is_rejected():
    with pytest.raises(ValueError):
        subtype_from_probabilities(1.2, 0.5, 0.5, 10.0)
