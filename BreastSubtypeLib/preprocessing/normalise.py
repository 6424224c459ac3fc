"""Intensity normalisation of the model input crop.

Post-contrast signal has no absolute unit (scanner, coil, gain and bias field change it), so each
crop is normalised by its own statistics: ``"percentile"`` maps the 1st and 99th percentiles of the
crop's voxels that lie inside the image to 0 and 1 (robust to a few hot vessels or noise spikes, and
both fat-suppressed tissue and the enhancing lesion fall inside the range), then clips to
``clip_range`` so that extreme voxels cannot dominate. ``"zscore"`` (mean 0, standard deviation 1)
is offered for comparison. Voxels outside the image (NaN from the crop's resampling) become 0.
"""

from __future__ import annotations

import numpy as np

from BreastSubtypeLib.errors import BadInputError


def normalise_crop(
    crop: np.ndarray,
    method: str = "percentile",
    percentiles: tuple[float, float] = (1.0, 99.0),
    clip_range: tuple[float, float] = (-0.5, 1.5),
    *,
    source: str = "the image",
) -> tuple[np.ndarray, tuple[float, float]]:
    """Normalised float32 copy of ``crop`` and the (offset, scale) used: ``(crop - offset) / scale``.

    >>> out, (offset, scale) = normalise_crop(np.arange(101, dtype=np.float32), percentiles=(0, 100))
    >>> float(out[0]), float(out[-1]), offset, scale
    (0.0, 1.0, 0.0, 100.0)
    """
    inside = np.isfinite(crop)
    values = crop[inside]
    if values.size == 0:
        raise BadInputError(f"The lesion's crop lies entirely outside {source}.")
    if method == "percentile":
        low, high = np.percentile(values, percentiles)
        offset, scale = float(low), float(high - low)
    elif method == "zscore":
        offset, scale = float(values.mean()), float(values.std())
    else:
        raise ValueError(f"unknown normalisation {method!r}")
    if not scale > 1e-6 * max(abs(offset), 1.0):
        raise BadInputError(
            f"The intensities of {source} are constant around the lesion, so there is nothing to analyse."
        )
    out = np.zeros(crop.shape, np.float32)
    out[inside] = apply_normalisation(values, offset, scale, clip_range)
    return out, (offset, scale)


def apply_normalisation(
    values: np.ndarray, offset: float, scale: float, clip_range: tuple[float, float]
) -> np.ndarray:
    """Raw intensities in the normalised units of a crop whose (offset, scale) is known."""
    return np.clip((values - offset) / scale, *clip_range).astype(np.float32, copy=False)
