"""Warnings for a case whose numbers lie far outside the cohort the model was trained on.

The network reads the lesion's size and margin-profile numbers standardised with its training
cases' running mean and SD (``model.blocks.ScalarStandardiser``), and its linear path reads them in
proportion. A lesion unlike any training case (for example a small necrotic one whose rim is barely
brighter than the tissue around it, so the peritumoral contrasts, ratios to the rim's enhancement,
read 17 SD out) would have its calls extrapolated far beyond anything the model learned. Models
since recipe 11 hold such a number at ``NetworkConfig.scalar_limit_sd``; every model's prediction
says which numbers lay beyond ``NUMBER_LIMIT_SD``, so the reader knows the calls rest on an
extrapolation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from BreastSubtypeLib.model.config import NUMBER_LIMIT_SD, SCALAR_FEATURES
from BreastSubtypeLib.reports.margin_section import MARGIN_NUMBER_TITLES

SIZE_NUMBER_TITLES = {
    "log1p_lesion_volume_ml": "Lesion volume",
    "log_crop_spacing_mm": "Lesion extent (the model crop's spacing)",
}


def numbers_beyond_training(outputs: Mapping[str, Any], limit_sd: float) -> list[str]:
    """A one-line warning naming each number of this case more than ``NUMBER_LIMIT_SD`` training
    SDs from the training mean (``outputs["numbers_sd"]`` of one case), or none. ``limit_sd`` is the
    network's ``scalar_limit_sd`` (0: read unheld); a network without standardised numbers has no
    training SDs to compare with and gets none."""
    standardised = outputs.get("numbers_sd")
    if standardised is None:
        return []
    values = np.asarray(standardised, dtype=np.float64).reshape(-1)
    far = [
        f"{MARGIN_NUMBER_TITLES.get(name) or SIZE_NUMBER_TITLES.get(name, name)} {sd:+.1f} SD"
        for name, sd in zip(SCALAR_FEATURES, values)
        if abs(sd) > NUMBER_LIMIT_SD
    ]
    if not far:
        return []
    held = (
        f"the model reads none beyond {limit_sd:g} SD" if limit_sd else "the model reads them in proportion"
    )
    return [
        f"This lesion lies far outside the cohort the model learned from ({'; '.join(far)} from the "
        f"training cases' mean; {held}): its calls are an extrapolation."
    ]
