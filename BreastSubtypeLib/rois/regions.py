"""Core, rim and peritumoral regions of a tumour, in millimetres on the physical grid (SPEC §3).

    rim         tumour voxels within ``rim_mm`` of the tumour boundary
    core        the rest of the tumour (a thin lesion keeps at least its innermost voxels as core)
    peritumoral voxels outside the tumour within ``peri_mm`` of it, in tissue (not air), and not in
                another lesion or within ``peri_mm`` of one

Everything is computed on the lesion's bounding box plus margin, never on the whole volume, so the
512×512×160 reference case takes a few tens of milliseconds (benchmarks/bench_rois.py).

>>> result = compute_rois(image, tumour_mask, rim_mm=3.0, peri_mm=5.0)  # doctest: +SKIP
>>> result.volumes_ml["rim"], result.warnings  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.imaging.alignment import align_mask_to_image, same_grid
from BreastSubtypeLib.imaging.geometry import bounding_box_index
from BreastSubtypeLib.rois.distance import surface_distances_mm
from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM, ROI_NAMES
from BreastSubtypeLib.rois.lesions import rank_lesions

MAX_WIDTH_MM = 50.0
# A tumour smaller than this (a 3.4 mm sphere) is noise or a vessel cross-section: nothing to characterise.
MIN_TUMOUR_VOLUME_ML = 0.02
# Below this many voxels a lesion has no meaningful core/rim split; we still compute it, with a warning.
FEW_VOXELS = 30
# Air vs tissue: air is noise around zero, while even fat-suppressed fat keeps a sizeable fraction of the
# bright tissue's signal. Tissue = intensity above this fraction of the image's 99th percentile
# (estimated on a regular subsample of the whole volume, so bright lesions barely move it), confirmed by
# a majority of the voxel's 3×3×3 neighbourhood.
# MR magnitude is never negative, so an image with negative values was stored with an offset (a rescale
# intercept, another site's float scaling): there the fraction is measured from the air level (0.5th
# percentile) instead of from zero, or the offset would count fat as air. A positive offset cannot be
# told apart from uniformly bright tissue and is not corrected.
TISSUE_FRACTION_OF_P99 = 0.1
_PERCENTILE_SAMPLES = 50_000


@dataclass
class RoiResult:
    labelmap: sitk.Image  # uint8 on the input grid: 1 core, 2 rim, 3 peritumoral
    volumes_ml: dict[str, float]  # core, rim, peritumoral, tumour
    rim_mm_used: float
    warnings: list[str] = field(default_factory=list)
    lesion_count: int = 1
    tissue_threshold: float = 0.0


def check_widths(rim_mm: float, peri_mm: float) -> None:
    """Refuse widths no radiologist means: negative, a zero peritumoral band, or more than 50 mm."""
    for name, value in (("rim", rim_mm), ("peritumoral", peri_mm)):
        if not math.isfinite(value) or value < 0 or value > MAX_WIDTH_MM:
            raise BadInputError(f"The {name} width {value:g} mm is outside 0-{MAX_WIDTH_MM:g} mm.")
    if peri_mm == 0:
        raise BadInputError("The peritumoral width is 0 mm; give a band width above 0 mm (default 5 mm).")


def tissue_threshold(image: sitk.Image) -> float:
    """Intensity above which a voxel counts as tissue (see ``TISSUE_FRACTION_OF_P99``)."""
    array = sitk.GetArrayViewFromImage(image)
    step = max(1, int(round((array.size / _PERCENTILE_SAMPLES) ** (1 / 3))))
    sample = np.asarray(array[::step, ::step, ::step], dtype=np.float64).ravel()
    air = float(np.percentile(sample, 0.5)) if sample.min() < 0 else 0.0
    return float(air + TISSUE_FRACTION_OF_P99 * (np.percentile(sample, 99) - air))


def _select(lesion: str | int, count: int) -> list[int]:
    if lesion == "index":
        return [1]
    if lesion == "all":
        return list(range(1, count + 1))
    if isinstance(lesion, int) and not isinstance(lesion, bool) and 1 <= lesion <= count:
        return [lesion]
    raise BadInputError(
        f"Lesion {lesion!r} does not exist: choose 'index', 'all' or 1-{count} (largest first)."
    )


def _paste(target_shape, box, source_box, values) -> np.ndarray:
    """``values`` laid over ``source_box`` within a zero array covering ``box`` (both full-volume slices)."""
    out = np.zeros(target_shape, dtype=values.dtype)
    inner = tuple(slice(max(b.start, s.start), min(b.stop, s.stop)) for b, s in zip(box, source_box))
    if all(s.start < s.stop for s in inner):
        out[tuple(slice(i.start - b.start, i.stop - b.start) for i, b in zip(inner, box))] = values[
            tuple(slice(i.start - s.start, i.stop - s.start) for i, s in zip(inner, source_box))
        ]
    return out


def compute_rois(
    image: sitk.Image,
    tumour_mask: sitk.Image,
    rim_mm: float = 3.0,
    peri_mm: float = 5.0,
    *,
    lesion: str | int = "index",
    tissue_min: float | None = None,
    mask_source: str = "tumour mask",
) -> RoiResult:
    """Core/rim/peritumoral labelmap on ``image``'s grid from a tumour mask (any grid in the same space).

    ``lesion``: "index" (the largest connected lesion), "all", or n (the n-th largest). ``tissue_min``
    overrides the automatic air/tissue intensity threshold.
    """
    check_widths(rim_mm, peri_mm)
    if not same_grid(tumour_mask, image):
        tumour_mask = align_mask_to_image(tumour_mask, image, mask_source, binary=False)
    spacing_kji = tuple(reversed(image.GetSpacing()))
    mask = sitk.GetArrayViewFromImage(tumour_mask)
    union_box = bounding_box_index(mask, 0.0, image.GetSpacing())
    if union_box is None:
        raise BadInputError(f"The {mask_source} is empty (no non-zero voxel).")
    labels, counts = rank_lesions(mask[union_box])
    chosen = _select(lesion, len(counts))
    selected = np.isin(labels, chosen)
    others_exist = len(chosen) < len(counts)

    # Margin: the peritumoral band, plus another band when other lesions' bands must be excluded,
    # plus one voxel so the boundary is inside the box.
    margin_mm = peri_mm * (2 if others_exist else 1) + max(spacing_kji)
    lesion_box = bounding_box_index(selected, 0.0, image.GetSpacing())
    lesion_box = tuple(slice(u.start + b.start, u.start + b.stop) for u, b in zip(union_box, lesion_box))
    box = tuple(
        slice(max(b.start - pad, 0), min(b.stop + pad, n))
        for b, pad, n in zip(lesion_box, (math.ceil(margin_mm / s) for s in spacing_kji), mask.shape)
    )
    box_shape = tuple(s.stop - s.start for s in box)
    box_labels = _paste(box_shape, box, union_box, labels)
    tumour = np.isin(box_labels, chosen)
    others = (box_labels > 0) & ~tumour

    warnings: list[str] = []
    if others_exist and lesion == "index":
        warnings.append(
            f"The mask holds {len(counts)} separate lesions; the ROIs are those of the largest "
            f"(index) lesion, the others are excluded from its peritumoral band."
        )
    voxel_ml = float(np.prod(spacing_kji)) / 1000.0
    tumour_voxels = int(counts[np.asarray(chosen) - 1].sum())
    if tumour_voxels < FEW_VOXELS:
        warnings.append(
            f"The lesion has only {tumour_voxels} voxels ({tumour_voxels * voxel_ml:.3f} mL); "
            "its core, rim and peritumoral regions are unreliable."
        )
    if any(b.start == 0 or b.stop == n for b, n in zip(lesion_box, mask.shape)):
        warnings.append(
            "The lesion touches the image border; its extent beyond the field of view is "
            "unknown, so no rim is drawn along the border."
        )

    depth_mm, outside_mm = surface_distances_mm(tumour, spacing_kji)
    rim_used = float(rim_mm)
    deepest = float(depth_mm[tumour].max())
    if deepest <= rim_mm:
        # Thin lesion: narrow the rim to just below the innermost voxels' depth so they stay core.
        shallower = depth_mm[tumour & (depth_mm < deepest - 1e-6)]
        rim_used = float(shallower.max()) if shallower.size else 0.0
        warnings.append(
            f"The lesion is thinner than twice the rim width ({rim_mm:g} mm); the rim was "
            f"narrowed to {rim_used:.2f} mm so that the core keeps the innermost voxels."
        )
    rim = tumour & (depth_mm <= rim_used)

    threshold = tissue_threshold(image) if tissue_min is None else float(tissue_min)
    tissue = sitk.GetArrayViewFromImage(image)[box] > threshold
    # Majority vote over 3×3×3: drops noise spikes in air and the air voxel beside the skin.
    tissue &= ndimage.uniform_filter(tissue.astype(np.float32), size=3, mode="nearest") > 0.5
    peritumoral = ~tumour & (outside_mm <= peri_mm) & tissue & ~others
    if others.any():
        _, near_others_mm = surface_distances_mm(others, spacing_kji)
        peritumoral &= near_others_mm > peri_mm

    roi_box = np.zeros(box_shape, np.uint8)
    roi_box[tumour] = CORE
    roi_box[rim] = RIM
    roi_box[peritumoral] = PERITUMORAL
    full = np.zeros(mask.shape, np.uint8)
    full[box] = roi_box
    labelmap = sitk.GetImageFromArray(full)
    labelmap.CopyInformation(image)

    counts_by_label = np.bincount(roi_box.ravel(), minlength=4)
    volumes_ml = {
        ROI_NAMES[value]: float(counts_by_label[value] * voxel_ml) for value in (CORE, RIM, PERITUMORAL)
    }
    volumes_ml["tumour"] = volumes_ml["core"] + volumes_ml["rim"]
    return RoiResult(labelmap, volumes_ml, rim_used, warnings, len(counts), threshold)
