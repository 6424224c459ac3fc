"""THE preprocessing of a case for the network, shared by training and inference.

``prepare_model_input`` turns an image and its ROI labelmap (1 core, 2 rim, 3 peritumoral, on the
image grid) into the network's input: a lesion-centred cube of isotropic voxels, resampled from the
input in physical space (only the crop is resampled, never the whole volume), plus the per-case
scalars (lesion size, crop spacing and the margin profile measured on the input's own voxels,
``margin_profile.py``). ``crop_map_to_input_grid`` brings any map computed on the crop (attention, Grad-CAM) back
onto the input's exact grid.

The crop grid's axes are the input's own axes (no oblique interpolation of anisotropic slices),
re-ordered and re-signed to be as close as possible to LPS: the same anatomy stored with flipped or
permuted axes gives the same crop, and the network always sees the breast in one orientation.

>>> mi = prepare_model_input(image, rois.labelmap, PreprocessingConfig())  # doctest: +SKIP
>>> mi.array.shape, mi.scalars                                           # doctest: +SKIP
((4, 64, 64, 64), array([2.56, -0.29], dtype=float32))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.imaging.alignment import same_grid
from BreastSubtypeLib.imaging.geometry import bounding_box_index
from BreastSubtypeLib.model.config import REGIONS, PreprocessingConfig
from BreastSubtypeLib.preprocessing.margin_profile import margin_profile
from BreastSubtypeLib.preprocessing.normalise import apply_normalisation, normalise_crop


@dataclass
class ModelInput:
    """One case, ready for the network (no batch axis).

    ``array``: float32 (4, D, H, W) = normalised image, core, rim, peritumoral masks, indexed
    [channel, z, y, x] of ``crop_reference``; ``scalars``: float32 (n,) (``config.SCALAR_FEATURES``);
    ``crop_reference``: an image holding the crop grid's geometry (origin, spacing, direction, size).
    """

    array: np.ndarray
    scalars: np.ndarray
    crop_reference: sitk.Image
    lesion_volume_ml: float
    crop_spacing_mm: float
    intensity_offset: float
    intensity_scale: float


def canonical_axes(direction: Sequence[float]) -> tuple[np.ndarray, tuple[int, ...], tuple[float, ...]]:
    """The input's axes re-ordered and re-signed to be closest to LPS.

    Returns (crop direction 3×3 with the chosen axes as columns, the input axis of each crop axis,
    the sign of each). Greedy on the largest cosines, so each input axis is used once.
    """
    matrix = np.asarray(direction, dtype=float).reshape(3, 3)
    chosen: dict[int, int] = {}
    for flat in np.argsort(-np.abs(matrix), axis=None):
        row, column = divmod(int(flat), 3)
        if row not in chosen and column not in chosen.values():
            chosen[row] = column
    axes = tuple(chosen[row] for row in range(3))
    signs = tuple(1.0 if matrix[row, axes[row]] >= 0 else -1.0 for row in range(3))
    crop_direction = np.stack([signs[row] * matrix[:, axes[row]] for row in range(3)], axis=1)
    return crop_direction, axes, signs


def _tumour_boxes(labels: np.ndarray, spacing: Sequence[float], source: str):
    """Index boxes ([k, j, i] slices) of the ROI (labels 1-3) and of the tumour (1-2), tumour voxels."""
    roi_box = bounding_box_index(labels, 0.0, spacing)
    if roi_box is None:
        raise BadInputError(f"The ROI labelmap of {source} is empty.")
    sub = labels[roi_box]
    present = np.unique(sub)
    stray = present[(present < 0) | (present > 3) | (present != np.round(present))]
    if stray.size:
        raise BadInputError(
            f"The ROI labelmap of {source} has label {stray[0]:g}; expected 1 core, 2 rim, 3 peritumoral."
        )
    tumour = (sub == 1) | (sub == 2)
    tumour_box = bounding_box_index(tumour, 0.0, spacing)
    if tumour_box is None:
        raise BadInputError(f"The ROI labelmap of {source} has no tumour (labels 1 core, 2 rim).")
    tumour_box = tuple(slice(r.start + t.start, r.start + t.stop) for r, t in zip(roi_box, tumour_box))
    return roi_box, tumour_box, int(np.count_nonzero(tumour))


def crop_spacing_for(roi_extent_mm: float, config: PreprocessingConfig) -> float:
    """Isotropic crop spacing: fine for small lesions, zoomed out so larger ones still fit."""
    if config.fov_mode == "fixed":
        return config.target_spacing_mm
    return max(
        config.target_spacing_mm, config.fov_margin_factor * roi_extent_mm / min(config.crop_size_voxels)
    )


def crop_reference_image(
    image: sitk.Image, centre_lps: Sequence[float], spacing_mm: float, size_xyz: Sequence[int]
) -> sitk.Image:
    """An (empty, uint8) image whose geometry is the crop grid centred on ``centre_lps``."""
    direction, _axes, _signs = canonical_axes(image.GetDirection())
    size = np.asarray(size_xyz, dtype=float)
    origin = np.asarray(centre_lps, dtype=float) - direction @ (spacing_mm * (size - 1) / 2)
    reference = sitk.Image([int(s) for s in size_xyz], sitk.sitkUInt8)
    reference.SetSpacing([float(spacing_mm)] * 3)
    reference.SetDirection(direction.flatten().tolist())
    reference.SetOrigin(origin.tolist())
    return reference


def prepare_model_input(
    image: sitk.Image,
    roi_labelmap: sitk.Image,
    config: PreprocessingConfig | None = None,
    *,
    source: str = "the image",
) -> ModelInput:
    """The network's input for one case: crop in physical space, resample only the crop, normalise.

    ``roi_labelmap`` must be on ``image``'s grid (1 core, 2 rim, 3 peritumoral). The crop is centred
    on the centre of the tumour's bounding box; its field of view follows ``config`` (see
    :class:`PreprocessingConfig`). The image is resampled linearly, the labels nearest-neighbour.
    ``source`` names the file in error messages.
    """
    config = config or PreprocessingConfig()
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise BadInputError(f"{source} is not a single-component 3-D image.")
    if roi_labelmap.GetDimension() != 3 or not same_grid(roi_labelmap, image):
        raise BadInputError(f"The ROI labelmap is not on the grid of {source} (align it to the image first).")
    spacing = image.GetSpacing()
    labels = sitk.GetArrayViewFromImage(roi_labelmap)
    roi_box, tumour_box, tumour_voxels = _tumour_boxes(labels, spacing, source)

    # Index boxes are [k, j, i]; geometry wants (i, j, k).
    centre_index = [(tumour_box[2 - a].start + tumour_box[2 - a].stop - 1) / 2 for a in range(3)]
    centre_lps = image.TransformContinuousIndexToPhysicalPoint(centre_index)
    roi_extent_mm = max((roi_box[2 - a].stop - roi_box[2 - a].start) * spacing[a] for a in range(3))
    crop_spacing_mm = crop_spacing_for(roi_extent_mm, config)
    reference = crop_reference_image(image, centre_lps, crop_spacing_mm, config.crop_size_voxels)

    identity = sitk.Transform()
    # NaN marks samples outside the image so normalisation ignores them (lesions near the border).
    crop = sitk.Resample(image, reference, identity, sitk.sitkLinear, math.nan, sitk.sitkFloat32)
    crop_labels = sitk.Resample(
        roi_labelmap, reference, identity, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8
    )
    normalised, (offset, scale) = normalise_crop(
        sitk.GetArrayViewFromImage(crop),
        config.normalisation,
        config.percentiles,
        config.clip_range,
        source=source,
    )
    label_array = sitk.GetArrayViewFromImage(crop_labels)
    array = np.empty((1 + len(REGIONS), *label_array.shape), np.float32)
    array[0] = normalised
    for channel in range(1, len(REGIONS) + 1):
        np.equal(label_array, channel, out=array[channel], casting="unsafe")

    lesion_volume_ml = tumour_voxels * math.prod(spacing) / 1000.0
    profile = margin_profile(
        sitk.GetArrayViewFromImage(image)[roi_box],
        labels[roi_box],
        spacing[::-1],
        lambda values: apply_normalisation(values, offset, scale, config.clip_range),
    )
    size = np.array([math.log1p(lesion_volume_ml), math.log(crop_spacing_mm)], np.float32)
    scalars = np.concatenate([size, profile])
    return ModelInput(
        array=array,
        scalars=scalars,
        crop_reference=reference,
        lesion_volume_ml=lesion_volume_ml,
        crop_spacing_mm=crop_spacing_mm,
        intensity_offset=offset,
        intensity_scale=scale,
    )


def stack_model_inputs(model_inputs: Sequence[ModelInput]) -> tuple[np.ndarray, np.ndarray]:
    """A batch for the network: arrays (B, 4, D, H, W) and scalars (B, n)."""
    return (np.stack([m.array for m in model_inputs]), np.stack([m.scalars for m in model_inputs]))


def crop_map_on_input_box(
    crop_map: np.ndarray, model_input: ModelInput, image: sitk.Image
) -> tuple[sitk.Image, tuple[int, int, int]] | None:
    """A map on the crop grid (D, H, W) resampled (linearly) onto the input voxels the crop covers.

    Returns (a float32 image on that index box of ``image``'s grid, the box's first index (i, j, k)),
    or None when the crop lies outside the image. The cost follows the crop, not the volume.
    """
    reference = model_input.crop_reference
    crop_map = np.asarray(crop_map, dtype=np.float32)
    if crop_map.shape != tuple(reversed(reference.GetSize())):
        raise ValueError(
            f"crop map of shape {crop_map.shape} does not match the crop grid "
            f"{tuple(reversed(reference.GetSize()))}"
        )
    # The crop's outer voxel faces (continuous index -0.5 .. n-0.5) bound what it can paint.
    size = np.asarray(reference.GetSize(), dtype=float)
    corners = [[-0.5 + c * s for c, s in zip(corner, size)] for corner in np.ndindex(2, 2, 2)]
    indices = np.array(
        [
            image.TransformPhysicalPointToContinuousIndex(
                reference.TransformContinuousIndexToPhysicalPoint(c)
            )
            for c in corners
        ]
    )
    lower = np.maximum(np.floor(indices.min(axis=0)).astype(int), 0)
    upper = np.minimum(np.ceil(indices.max(axis=0)).astype(int), np.asarray(image.GetSize()) - 1)
    if np.any(upper < lower):
        return None
    crop_image = sitk.GetImageFromArray(crop_map)
    crop_image.CopyInformation(reference)
    box = sitk.Image([int(hi - lo + 1) for hi, lo in zip(upper, lower)], sitk.sitkFloat32)
    box.SetSpacing(image.GetSpacing())
    box.SetDirection(image.GetDirection())
    box.SetOrigin(image.TransformIndexToPhysicalPoint([int(v) for v in lower]))
    resampled = sitk.Resample(crop_image, box, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    return resampled, tuple(int(v) for v in lower)


def paste_box(
    grid: sitk.Image, box: sitk.Image | float, lower_ijk: Sequence[int], size_ijk: Sequence[int]
) -> None:
    """Write ``box`` (an image of ``grid``'s pixel type, or one value) into ``grid`` at ``lower_ijk``, in place."""
    grid[tuple(slice(lo, lo + n) for lo, n in zip(lower_ijk, size_ijk))] = box


def crop_map_to_input_grid(crop_map: np.ndarray, model_input: ModelInput, image: sitk.Image) -> sitk.Image:
    """A map on the crop grid (D, H, W) → float32 image on ``image``'s exact grid, zero outside the crop."""
    full = sitk.Image(image.GetSize(), sitk.sitkFloat32)
    full.CopyInformation(image)
    found = crop_map_on_input_box(crop_map, model_input, image)
    if found is not None:
        box, lower = found
        paste_box(full, box, lower, box.GetSize())
    return full
