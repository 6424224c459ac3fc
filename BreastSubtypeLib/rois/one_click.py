"""The tumour from one click: a classical, bounded segmentation of an enhancing lesion (no learned weights).

1. Levels: the lesion's enhancement is the 90th percentile of the lightly smoothed post-contrast signal
   within ``local_mm`` of the seed (so a click in a necrotic centre still sees the enhancing wall);
   the background is the median of the tissue (not air) in the search region.
2. Threshold half-way... at ``background + 0.4 × (lesion - background)``, open with a 1 mm ball to cut
   the thin vessels that touch the lesion, keep the connected region that holds the seed (holes
   filled: necrosis is tumour), fill holes again.
3. Refuse rather than guess: seed outside the image or in air, no enhancement at the seed, a region
   that reaches its bound (a leak into enhancing parenchyma or vessels), or one too small to be a mass.

The search region is a ball of radius ``max_diameter_mm`` around the seed, or the user's box.

>>> result = segment_tumour_from_seed(image, (12.0, -40.5, 8.0), seed_space="RAS")  # doctest: +SKIP
>>> result.volume_ml, result.warnings  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from BreastSubtypeLib.errors import TumourSegmentationError
from BreastSubtypeLib.imaging.geometry import physical_to_continuous_index, ras_to_lps
from BreastSubtypeLib.rois.regions import tissue_threshold

LESION_PERCENTILE = 90
THRESHOLD_FRACTION = 0.4  # of the way from background to lesion enhancement
MIN_ENHANCEMENT_RATIO = 2.0  # lesion level / background level below which nothing enhances
SMOOTHING_MM = 0.6
OPENING_MM = 1.0
MIN_VOLUME_ML = 0.02  # a 3.4 mm sphere: smaller is noise or a vessel cross-section


@dataclass
class OneClickResult:
    mask: sitk.Image  # uint8 0/1 on the input grid
    volume_ml: float
    warnings: list[str] = field(default_factory=list)


def _to_lps(point: Sequence[float], space: str) -> tuple[float, float, float]:
    if space not in ("RAS", "LPS"):
        raise TumourSegmentationError(f"Unknown seed space {space!r}: use 'RAS' or 'LPS'.")
    point = tuple(float(v) for v in point)
    if len(point) != 3 or not all(math.isfinite(v) for v in point):
        raise TumourSegmentationError(f"The seed {point} is not a 3-D point.")
    return ras_to_lps(point) if space == "RAS" else point


def _ball(radius_mm: float, spacing_kji) -> np.ndarray:
    half = [int(math.floor(radius_mm / s)) for s in spacing_kji]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    return sum((g * s) ** 2 for g, s in zip(grids, spacing_kji)) <= radius_mm**2


def segment_tumour_from_seed(
    image: sitk.Image,
    seed: Sequence[float],
    *,
    seed_space: str = "RAS",
    box: Sequence[Sequence[float]] | None = None,
    max_diameter_mm: float = 60.0,
    local_mm: float = 10.0,
) -> OneClickResult:
    """Segment the enhancing lesion under ``seed`` (a point inside it, in ``seed_space``).

    ``box``: two opposite corners in the seed's space bounding the lesion, or None.
    Raises TumourSegmentationError when no bounded, enhancing lesion is found at the seed.
    """
    seed_lps = _to_lps(seed, seed_space)
    size = np.asarray(image.GetSize())
    seed_ijk = np.asarray(physical_to_continuous_index(image, seed_lps))
    if np.any(seed_ijk < -0.5) or np.any(seed_ijk > size - 0.5):
        raise TumourSegmentationError(
            f"The seed {tuple(round(v, 1) for v in seed)} ({seed_space}) lies outside the image."
        )
    seed_voxel = np.clip(np.round(seed_ijk).astype(int), 0, size - 1)[::-1]  # (k, j, i)
    spacing_kji = np.asarray(image.GetSpacing())[::-1]

    if box is not None:
        corners = np.asarray([physical_to_continuous_index(image, _to_lps(c, seed_space)) for c in box])[
            :, ::-1
        ]
        low = np.clip(np.floor(corners.min(axis=0) + 0.5).astype(int), 0, size[::-1] - 1)
        high = np.clip(np.floor(corners.max(axis=0) + 0.5).astype(int), 0, size[::-1] - 1) + 1
        if np.any(seed_voxel < low) or np.any(seed_voxel >= high):
            raise TumourSegmentationError("The seed lies outside the box drawn around the lesion.")
        bound_mm = None
    else:
        half = np.ceil(max_diameter_mm / spacing_kji).astype(int)
        low = np.maximum(seed_voxel - half, 0)
        high = np.minimum(seed_voxel + half + 1, size[::-1])
        bound_mm = float(max_diameter_mm)
    crop = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    seed_in_crop = tuple(int(v) for v in seed_voxel - low)

    values = np.asarray(sitk.GetArrayViewFromImage(image)[crop], dtype=np.float32)
    smoothed = ndimage.gaussian_filter(values, sigma=SMOOTHING_MM / spacing_kji, mode="nearest")
    grids = np.ogrid[tuple(slice(0, n) for n in values.shape)]
    distance_mm = np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grids, seed_in_crop, spacing_kji)))
    search = distance_mm <= bound_mm if bound_mm is not None else np.ones(values.shape, bool)

    air_level = tissue_threshold(image)
    tissue = search & (smoothed > air_level)
    near_seed = distance_mm <= 1.5
    if np.median(smoothed[near_seed]) <= air_level and smoothed[seed_in_crop] <= air_level:
        raise TumourSegmentationError(
            "The seed lies in air, not on the lesion; click inside the enhancing lesion."
        )
    background = float(np.median(smoothed[tissue]))
    local = smoothed[(distance_mm <= min(local_mm, max_diameter_mm / 2)) & tissue]
    lesion_level = float(np.percentile(local, LESION_PERCENTILE))
    if lesion_level < MIN_ENHANCEMENT_RATIO * background:
        raise TumourSegmentationError(
            f"Nothing enhances at the seed ({lesion_level:.0f} vs {background:.0f} in the surrounding tissue); "
            "click inside an enhancing lesion."
        )
    threshold = background + THRESHOLD_FRACTION * (lesion_level - background)
    candidate = search & (smoothed > threshold)
    candidate = ndimage.binary_opening(candidate, structure=_ball(OPENING_MM, spacing_kji))
    candidate = ndimage.binary_fill_holes(candidate)
    components, _ = ndimage.label(candidate, structure=np.ones((3, 3, 3), bool))
    label = components[seed_in_crop]
    if label == 0:
        # A click just off the enhancing wall: take the region within 2 mm of the seed, if any.
        nearby = components[(distance_mm <= 2.0) & (components > 0)]
        if nearby.size == 0:
            raise TumourSegmentationError(
                "No enhancing lesion at the seed (it lies in non-enhancing tissue such as fat); "
                "click inside the enhancing lesion."
            )
        label = np.bincount(nearby).argmax()
    region = ndimage.binary_fill_holes(components == label)

    warnings: list[str] = []
    voxel_ml = float(np.prod(spacing_kji)) / 1000.0
    volume_ml = float(region.sum()) * voxel_ml
    edge = max(spacing_kji)
    if bound_mm is not None and distance_mm[region].max() > bound_mm - edge:
        raise TumourSegmentationError(
            f"The region grown from the seed reached its {bound_mm:g} mm bound (it leaked into enhancing "
            "parenchyma or vessels); draw a box around the lesion or segment it by hand."
        )
    if volume_ml < MIN_VOLUME_ML:
        raise TumourSegmentationError(
            f"The enhancing region at the seed is only {volume_ml * 1000:.0f} mm³, too small for a mass; "
            "click inside the lesion or segment it by hand."
        )
    touches_crop = [
        (region.take(0, axis=a).any() and low[a] > 0)
        or (region.take(-1, axis=a).any() and high[a] < size[::-1][a])
        for a in range(3)
    ]
    if box is not None and any(touches_crop):
        warnings.append("The lesion reaches the edge of the box; it may extend beyond it.")
    if any(
        region.take(0, axis=a).any()
        and low[a] == 0
        or region.take(-1, axis=a).any()
        and high[a] == size[::-1][a]
        for a in range(3)
    ):
        warnings.append(
            "The lesion touches the image border; its extent beyond the field of view is unknown."
        )

    full = np.zeros(tuple(size[::-1]), np.uint8)
    full[crop] = region
    mask = sitk.GetImageFromArray(full)
    mask.CopyInformation(image)
    return OneClickResult(mask, volume_ml, warnings)
