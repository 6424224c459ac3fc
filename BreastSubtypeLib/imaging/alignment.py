"""Put a mask on its image's grid without ever guessing geometry.

Same grid: used as is. Same physical space on another grid (cropped, resampled, other orientation):
nearest-neighbour resampling onto the image grid. No physical overlap: refused.
"""

from __future__ import annotations

import itertools

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.imaging.validation import validate_mask


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    """Same size, and spacing/origin/direction equal within a small fraction of a voxel."""
    if a.GetSize() != b.GetSize():
        return False
    spacing_a, spacing_b = np.asarray(a.GetSpacing()), np.asarray(b.GetSpacing())
    tolerance_mm = 1e-3 * float(spacing_a.min())
    return (
        np.allclose(spacing_a, spacing_b, rtol=1e-4, atol=0)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), rtol=0, atol=tolerance_mm)
        and np.allclose(a.GetDirection(), b.GetDirection(), rtol=0, atol=1e-4)
    )


def physical_extent(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned LPS box (low, high) of the image's voxels, edges included."""
    size = image.GetSize()
    corners = [
        image.TransformContinuousIndexToPhysicalPoint(
            [size[n] - 0.5 if high else -0.5 for n, high in enumerate(pick)]
        )
        for pick in itertools.product((False, True), repeat=3)
    ]
    corners = np.asarray(corners)
    return corners.min(axis=0), corners.max(axis=0)


def align_mask_to_image(
    mask: sitk.Image, image: sitk.Image, source: str, *, binary: bool = True
) -> sitk.Image:
    """The mask as uint8 on ``image``'s grid (non-zero = tumour; 0/1 whenever it had to be converted).

    >>> aligned = align_mask_to_image(read_image("t.nrrd", what="mask"), image, "t.nrrd")  # doctest: +SKIP
    """
    validate_mask(mask, source, binary=binary)
    if same_grid(mask, image):
        if mask.GetPixelID() != sitk.sitkUInt8:
            mask = sitk.NotEqual(mask, 0)  # uint8 0/1
        if (mask.GetOrigin(), mask.GetSpacing(), mask.GetDirection()) != (
            image.GetOrigin(),
            image.GetSpacing(),
            image.GetDirection(),
        ):
            mask = sitk.Image(mask)
            mask.CopyInformation(image)
        return mask
    mask_low, mask_high = physical_extent(mask)
    image_low, image_high = physical_extent(image)
    if np.any(mask_high < image_low) or np.any(image_high < mask_low):
        raise BadInputError(
            f"The mask {source} does not overlap the image in physical space "
            "(different position or orientation)."
        )
    binary_mask = sitk.NotEqual(mask, 0)
    resampled = sitk.Resample(
        binary_mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8
    )
    if not sitk.GetArrayViewFromImage(resampled).any():
        raise BadInputError(
            f"The mask {source} lies outside the image: none of its voxels fall on the image grid."
        )
    return resampled
