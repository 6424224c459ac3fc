"""Checks at the door: every problem a user can fix becomes one BadInputError sentence naming the file.

``source`` is what the user gave (a path, or a name such as "the Slicer volume").
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.imaging.io import MAX_VOXELS

# Breast MRI has 0.3-3 mm voxels; outside this range the header is wrong (e.g. metres or missing units).
SPACING_RANGE_MM = (0.05, 20.0)


def _describe_size(image: sitk.Image) -> str:
    return "×".join(str(v) for v in image.GetSize())


def _check_geometry(image: sitk.Image, source: str, what: str) -> None:
    dimension = image.GetDimension()
    if dimension != 3:
        hint = "choose one 3-D phase or frame" if dimension > 3 else "a 3-D volume is required"
        raise BadInputError(f"The {what} {source} is {dimension}-D (size {_describe_size(image)}); {hint}.")
    components = image.GetNumberOfComponentsPerPixel()
    if components != 1:
        raise BadInputError(
            f"The {what} {source} has {components} components per voxel (colour or vector data); "
            "a scalar volume is required."
        )
    if image.GetPixelID() in (sitk.sitkComplexFloat32, sitk.sitkComplexFloat64):
        raise BadInputError(f"The {what} {source} holds complex values; a real-valued volume is required.")
    voxels = int(np.prod(image.GetSize(), dtype=np.int64))
    if voxels > MAX_VOXELS:
        raise BadInputError(
            f"The {what} {source} has {voxels:,} voxels, more than the {MAX_VOXELS:,} this tool can process."
        )
    low, high = SPACING_RANGE_MM
    spacing = image.GetSpacing()
    if not all(low <= s <= high for s in spacing):
        pretty = " × ".join(f"{s:g}" for s in spacing)
        raise BadInputError(
            f"The {what} {source} has an implausible voxel spacing of {pretty} mm "
            f"(expected {low:g}-{high:g} mm per axis); check the header units."
        )
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    # Distances in mm rely on an orthonormal direction matrix (a rotation, possibly with flips).
    if not np.allclose(direction @ direction.T, np.eye(3), atol=1e-4):
        raise BadInputError(
            f"The {what} {source} has a sheared or scaled direction matrix; "
            "only rotations and flips are supported."
        )


def validate_image(image: sitk.Image, source: str) -> None:
    """A 3-D scalar volume with sane spacing, finite values that are not all the same."""
    _check_geometry(image, source, "image")
    array = sitk.GetArrayViewFromImage(image)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise BadInputError(f"The image {source} contains NaN or infinite intensities.")
    low, high = array.min(), array.max()
    if low == high:
        raise BadInputError(f"The image {source} is constant (every voxel is {low:g}); it holds no image.")


def validate_mask(mask: sitk.Image, source: str, *, binary: bool = True) -> None:
    """A non-empty 3-D mask of whole, non-negative numbers.

    ``binary=True`` requires 0 and one foreground value (1, 255, ...); ``binary=False`` accepts labels.
    """
    _check_geometry(mask, source, "mask")
    array = sitk.GetArrayViewFromImage(mask)
    foreground = array[array != 0]
    if foreground.size == 0:
        raise BadInputError(f"The mask {source} is empty (no non-zero voxel).")
    values = np.unique(foreground)
    if array.dtype.kind == "f" and not (np.isfinite(values).all() and np.all(values == np.round(values))):
        raise BadInputError(
            f"The mask {source} holds fractional or non-finite values; a mask of whole numbers is required."
        )
    if values[0] < 0:
        raise BadInputError(f"The mask {source} holds negative values ({values[0]:g}).")
    if binary and values.size > 1:
        shown = ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if values.size > 6 else "")
        raise BadInputError(
            f"The mask {source} is not binary: it holds the values 0, {shown}; "
            "a tumour mask has 0 and one foreground value."
        )
