"""Distance in millimetres from voxel centres to the boundary of a region, on the physical grid.

The boundary of a voxelised region lies between its voxels and their outside neighbours. We take it
half-way: for an inside voxel p whose nearest outside voxel centre is q (Euclidean distance a(p),
``distance_transform_edt`` with ``sampling`` = spacing), the boundary point on the way is about half
the inside-outside gap at q before q, so

    depth(p)   = a(p) - b(q) / 2        b(q): distance from q to the nearest inside voxel centre
    outside(p) = b(p) - a(r) / 2        r: the inside voxel nearest to an outside voxel p

The half-gap adapts to anisotropy (0.35 mm across a 0.7 mm axis, 0.75 mm across a 1.5 mm one), which
a fixed half-voxel would not; on analytic spheres and ellipsoids the shells it gives match their
volumes (Testing/test_rois.py). Direction matrices are orthonormal, so index-grid distances with
per-axis spacing are exact millimetres on flipped and oblique grids too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def surface_distances_mm(inside: np.ndarray, spacing_kji: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(depth, outside) in mm for a boolean ``[k, j, i]`` region.

    ``depth`` is the distance of each inside voxel to the boundary (0 outside); ``outside`` the distance
    of each outside voxel to it (0 inside). Voxels beyond the array are unknown, not outside: a region
    cut by the array edge has no boundary there. With no boundary in the array, distances are ``inf``.
    """
    inside = np.asarray(inside, dtype=bool)
    outside_voxels = ~inside
    if not inside.any() or not outside_voxels.any():
        depth = np.where(inside, np.inf, 0.0)
        return depth, np.where(inside, 0.0, np.inf)
    sampling = [float(s) for s in spacing_kji]
    to_outside, nearest_outside = ndimage.distance_transform_edt(
        inside, sampling=sampling, return_indices=True
    )
    to_inside, nearest_inside = ndimage.distance_transform_edt(
        outside_voxels, sampling=sampling, return_indices=True
    )
    depth = np.where(inside, to_outside - 0.5 * to_inside[tuple(nearest_outside)], 0.0)
    outside = np.where(outside_voxels, to_inside - 0.5 * to_outside[tuple(nearest_inside)], 0.0)
    return depth, outside
