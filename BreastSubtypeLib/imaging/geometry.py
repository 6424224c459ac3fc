"""Coordinates: ITK physical space is LPS, Slicer's is RAS; index boxes sized in millimetres."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk


def ras_to_lps(point: Sequence[float]) -> tuple[float, float, float]:
    """(x, y, z)_LPS = (-x, -y, z)_RAS (the same flip in both directions)."""
    x, y, z = (float(v) for v in point)
    return (-x, -y, z)


def lps_to_ras(point: Sequence[float]) -> tuple[float, float, float]:
    return ras_to_lps(point)


def physical_to_continuous_index(image: sitk.Image, point_lps: Sequence[float]) -> tuple[float, float, float]:
    """Continuous (i, j, k) index of an LPS point; integer values are voxel centres."""
    return tuple(image.TransformPhysicalPointToContinuousIndex([float(v) for v in point_lps]))


def margin_voxels(margin_mm: float, spacing: Sequence[float]) -> tuple[int, int, int]:
    """Margin per array axis (k, j, i) covering ``margin_mm`` given sitk spacing (x, y, z)."""
    return tuple(int(math.ceil(margin_mm / float(s))) for s in reversed(tuple(spacing)))


def bounding_box_index(
    mask_array: np.ndarray, margin_mm: float, spacing: Sequence[float]
) -> tuple[slice, slice, slice] | None:
    """Slices (k, j, i) of the non-zero voxels of a ``[k, j, i]`` array grown by ``margin_mm``.

    Clipped to the array; ``None`` when the mask is empty. ``spacing`` is in sitk order (x, y, z).
    """
    pads = margin_voxels(margin_mm, spacing)
    present_k = np.flatnonzero(mask_array.any(axis=(1, 2)))
    if present_k.size == 0:
        return None
    # Reduce the other axes only over the slab of slices that hold the mask (large volumes, small lesions).
    slab = mask_array[present_k[0] : present_k[-1] + 1]
    extents = [present_k, np.flatnonzero(slab.any(axis=(0, 2))), np.flatnonzero(slab.any(axis=(0, 1)))]
    return tuple(
        slice(max(int(present[0]) - pad, 0), min(int(present[-1]) + 1 + pad, mask_array.shape[axis]))
        for axis, (present, pad) in enumerate(zip(extents, pads))
    )
