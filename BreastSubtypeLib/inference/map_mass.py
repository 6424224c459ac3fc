"""Where a heatmap's mass lies on the input grid, as a radiologist sees it: the share inside the
ROIs and the share within a distance (mm) of them. Mass = sum of map values; an empty map has none.

Used by the heatmap tests and by ``benchmarks/heatmap_shares.py``, which reports these shares over
many phantoms for a model (SPEC §9: a heatmap is evidence, so where it points is measured).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def distance_from_rois_mm(labelmap: sitk.Image) -> np.ndarray:
    """[k, j, i] distance in mm from the ROIs (core ∪ rim ∪ peritumoral); ≤ 0 inside them."""
    rois = sitk.Cast(labelmap > 0, sitk.sitkUInt8)
    distance = sitk.SignedMaurerDistanceMap(
        rois, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    return sitk.GetArrayFromImage(distance)


def mass_share(heatmap: sitk.Image, where: np.ndarray) -> float | None:
    """Share of ``heatmap``'s mass on the voxels where ``where`` is true; None for an empty map."""
    values = sitk.GetArrayViewFromImage(heatmap).astype(np.float64)
    total = float(values.sum())
    return float(values[where].sum()) / total if total > 0 else None
