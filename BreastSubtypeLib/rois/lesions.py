"""Separate lesions of a tumour mask: connected components ranked by size (1 = the index lesion)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# 26-connectivity: voxels touching by a corner belong to the same lesion (masks drawn slice by slice
# often join only diagonally between slices).
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


def rank_lesions(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, voxel_counts): label 1 is the largest lesion, 2 the next, ...; ties keep scan order.

    ``voxel_counts[n - 1]`` is the size of lesion ``n``.
    """
    components, count = ndimage.label(np.asarray(mask) != 0, structure=_CONNECTIVITY)
    if count == 0:
        return components.astype(np.int32), np.zeros(0, np.int64)
    sizes = np.bincount(components.ravel(), minlength=count + 1)[1:]
    order = np.argsort(-sizes, kind="stable")
    relabel = np.zeros(count + 1, dtype=np.int32)
    relabel[order + 1] = np.arange(1, count + 1, dtype=np.int32)
    return relabel[components], sizes[order]
