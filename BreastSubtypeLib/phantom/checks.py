"""Checks of the generator's numeric options: one clear line naming the option when one is wrong."""

from __future__ import annotations

import math

from BreastSubtypeLib.errors import BadInputError


def number_in(value, what: str, low: float, high: float) -> float:
    """``value`` as a float in [low, high]."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not low <= number <= high:
        raise BadInputError(f"{what} must be between {low:g} and {high:g}, got {value!r}.")
    return number


def range_in(value, what: str, low: float, high: float) -> tuple[float, float]:
    """``value`` as a (lo, hi) pair with low <= lo <= hi <= high."""
    try:
        first, second = (float(v) for v in value)
    except (TypeError, ValueError):
        first = second = math.nan
    if not low <= first <= second <= high:
        raise BadInputError(
            f"{what} must be a range lo,hi with {low:g} <= lo <= hi <= {high:g}, got {value}."
        )
    return first, second
