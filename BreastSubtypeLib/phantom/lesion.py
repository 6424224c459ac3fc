"""The enhancing tumour: shape, core/rim appearance and its peritumoral band, from latent features.

Appearance from the latent features (``biomarkers.py``), with t(x) = sigmoid(x):

- rim vs core (``rim_enhancement`` r): t_r = t(1.7 r); rim signal E * (1 + 0.2 t_r) decaying
  inwards over 1.5 mm to the core's E * (1 - 0.45 t_r); central necrosis (non-enhancing) over the
  innermost fraction 0.6 t_r³ of the depth.
- peritumoral band (``peritumoral_oedema`` p): t_p = t(1.8 p - 0.3); outside the tumour mask only,
  on tissue (never air), E * (0.04 + 0.55 t_p) * exp(-d / 2 mm), fading to zero at d = 6 mm.
- margin (``margin_spiculation`` s): t_s = t(1.6 s); 1 + 11 t_s spicules of length
  (0.1 + 0.7 t_s) R and lobulation amplitude 0.04 + 0.16 t_s.
- internal texture (``internal_heterogeneity`` h): t_h = t(1.7 h); multiplicative smooth texture
  of SD 0.04 + 0.30 t_h inside the tumour.
- size (``lesion_size``): diameter 8 + 27 t(1.2 size) mm unless given; in a cohort's range
  [lo, hi] mm, lo * (hi / lo) ** t(1.2 size): geometric, so small lesions are as common as in a
  clinic (5-60 mm: median 17 mm, a fifth under 10 mm).
E, the lesion's enhancement, is a nuisance: 1750 * exp(0.12 N(0, 1)), so absolute core or band
intensity alone says less than their contrast with the rest of the lesion.

All distances are exact millimetres on the anisotropic grid (Euclidean distance transforms with
``sampling``), computed only in the lesion's bounding box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, special

PERITUMORAL_DECAY_MM = 2.0
PERITUMORAL_EXTENT_MM = 6.0
RIM_DECAY_MM = 1.5


def _t(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def diameter_from_latent(size_latent: float, range_mm=None) -> float:
    if range_mm is None:
        return 8.0 + 27.0 * _t(1.2 * size_latent)
    low, high = range_mm
    return low * (high / low) ** _t(1.2 * size_latent)


@dataclass
class LesionAppearance:
    diameter_mm: float
    enhancement: float
    core_level: float
    rim_level: float
    necrosis_fraction: float
    peritumoral_level: float
    spicule_count: int
    spicule_length: float
    lobulation: float
    heterogeneity: float

    @property
    def max_extent_mm(self) -> float:
        """Largest distance of any tumour voxel from the centre (lobes and spicules included)."""
        return self.diameter_mm / 2 * (1.0 + 2.0 * self.lobulation + self.spicule_length)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def appearance_from_latents(
    z: dict, rng: np.random.Generator, diameter_mm: float | None, diameter_range_mm=None
) -> LesionAppearance:
    t_r, t_p = _t(1.7 * z["rim_enhancement"]), _t(1.8 * z["peritumoral_oedema"] - 0.3)
    t_s, t_h = _t(1.6 * z["margin_spiculation"]), _t(1.7 * z["internal_heterogeneity"])
    if diameter_mm is None:
        diameter_mm = diameter_from_latent(z["lesion_size"], diameter_range_mm)
    return LesionAppearance(
        diameter_mm=float(diameter_mm),
        enhancement=float(1750.0 * math.exp(0.12 * rng.standard_normal())),
        core_level=1.0 - 0.45 * t_r,
        rim_level=1.0 + 0.2 * t_r,
        necrosis_fraction=0.6 * t_r**3,
        peritumoral_level=0.04 + 0.55 * t_p,
        spicule_count=int(round(1 + 11 * t_s)),
        spicule_length=0.1 + 0.7 * t_s,
        lobulation=0.04 + 0.16 * t_s,
        heterogeneity=0.04 + 0.30 * t_h,
    )


def _unit_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@dataclass
class LesionShape:
    """A tumour mask in a box centred on voxel ``centre_offset`` (k, j, i) of that box.

    Lesions are centred on a voxel so the shape does not depend on where it is placed; the box
    reaches ``PERITUMORAL_EXTENT_MM`` beyond the largest possible extent.
    """

    mask: np.ndarray  # bool [k, j, i]
    centre_offset: tuple[int, int, int]
    extent_voxels: tuple[tuple[int, int], ...]  # per axis (k, j, i): voxels of tumour before/after the centre
    radius_max_mm: float  # largest distance of a tumour voxel from the centre


def render_shape(appearance: LesionAppearance, spacing_mm, rng: np.random.Generator) -> LesionShape:
    """Lobulated, spiculated tumour mask; exact on the anisotropic grid."""
    spacing = np.asarray(spacing_mm, float)
    radius = appearance.diameter_mm / 2
    half = np.ceil((appearance.max_extent_mm + PERITUMORAL_EXTENT_MM + 1.0) / spacing).astype(int)
    axes = [(np.arange(-half[d], half[d] + 1) * spacing[d]).astype(np.float32) for d in range(3)]
    dx, dy, dz = axes[0][None, None, :], axes[1][None, :, None], axes[2][:, None, None]
    distance = np.sqrt(dx * dx + dy * dy + dz * dz)
    # The boundary radius is a function of direction only: tabulate it on a 1-degree polar grid and
    # look it up per voxel (much cheaper than evaluating every lobe and spicule at every voxel).
    polar = np.linspace(0.0, np.pi, 181)[:, None]
    azimuth = np.linspace(-np.pi, np.pi, 361)[None, :]
    table_u = np.stack(np.broadcast_arrays(np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth),
                                           np.cos(polar)), axis=-1)  # fmt: skip
    lobes = _unit_vectors(rng, 6)
    lobe_weights = rng.standard_normal(6)
    spicules = _unit_vectors(rng, appearance.spicule_count)
    spicule_scale = rng.uniform(0.5, 1.0, appearance.spicule_count)
    lobulation = sum(w * np.exp(4.0 * (table_u @ v - 1.0)) for v, w in zip(lobes, lobe_weights))
    bound = 2 * appearance.lobulation
    lobulation = np.clip(appearance.lobulation * lobulation, -bound, bound)
    spiculation = np.zeros(table_u.shape[:2])
    for v, scale in zip(spicules, spicule_scale):
        np.maximum(spiculation, scale * np.exp((table_u @ v - 1.0) / 0.004), out=spiculation)
    table = (radius * (1.0 + lobulation + appearance.spicule_length * spiculation)).astype(np.float32)
    safe = np.maximum(distance, 1e-6)
    polar_index = np.rint(np.degrees(np.arccos(np.clip(dz / safe, -1.0, 1.0)))).astype(np.intp)
    azimuth_index = np.rint(np.degrees(np.arctan2(dy, dx)) + 180.0).astype(np.intp)
    mask = distance <= table[polar_index, azimuth_index]
    centre = tuple(int(h) for h in half[::-1])
    mask[centre] = True  # never empty
    # Keep only the tumour plus its peritumoral band: later steps cost per voxel of the box.
    margin = np.ceil((PERITUMORAL_EXTENT_MM + 1.0) / spacing[::-1]).astype(int)
    crop, extents = [], []
    for axis in range(3):
        occupied = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        extents.append((centre[axis] - int(occupied[0]), int(occupied[-1]) - centre[axis]))
        crop.append(slice(max(int(occupied[0]) - margin[axis], 0), int(occupied[-1]) + margin[axis] + 1))
    radius_max = float(distance[mask].max())
    mask = np.ascontiguousarray(mask[tuple(crop)])
    centre = tuple(c - s.start for c, s in zip(centre, crop))
    return LesionShape(mask, centre, tuple(extents), radius_max)


@dataclass
class LesionSignal:
    intensity: np.ndarray  # float32, tumour signal (valid inside the mask)
    peritumoral: np.ndarray  # float32, signal added outside the mask


def render_signal(
    appearance: LesionAppearance, mask: np.ndarray, spacing_mm, rng: np.random.Generator
) -> LesionSignal:
    """Core/rim/necrosis/texture inside ``mask`` and the peritumoral band outside it (same box).

    The random draws do not depend on the peritumoral level, so changing only that latent feature
    changes the image only outside the tumour.
    """
    spacing = np.asarray(spacing_mm, float)
    shape = mask.shape
    sampling = spacing[::-1]
    texture = _texture(rng, shape, sampling, 1.2)
    band_texture = _texture(rng, shape, sampling, 1.5)
    necrosis_texture = _texture(rng, shape, sampling, 3.0)

    depth = ndimage.distance_transform_edt(mask, sampling=sampling).astype(np.float32)
    rim_weight = np.exp(-(depth - spacing.min()) / RIM_DECAY_MM)
    profile = appearance.core_level + (appearance.rim_level - appearance.core_level) * rim_weight
    relative_depth = depth / max(float(depth.max()), 1e-6)
    necrotic = special.expit(
        (relative_depth - (1.0 - appearance.necrosis_fraction) + 0.08 * necrosis_texture) / 0.05
    )
    if appearance.necrosis_fraction < 0.02:
        necrotic[:] = 0.0
    intensity = (
        appearance.enhancement * profile * (1.0 - 0.8 * necrotic) * (1.0 + appearance.heterogeneity * texture)
    )

    outside = ndimage.distance_transform_edt(~mask, sampling=sampling).astype(np.float32)
    fade = np.clip((PERITUMORAL_EXTENT_MM - outside) / 1.5, 0.0, 1.0)
    band = np.exp(-outside / PERITUMORAL_DECAY_MM) * fade * (1.0 + 0.25 * band_texture)
    peritumoral = appearance.enhancement * appearance.peritumoral_level * np.where(mask, 0.0, band)
    return LesionSignal(intensity.astype(np.float32), peritumoral.astype(np.float32))


def paste_slices(centre_kji, centre_offset, box_shape, image_shape):
    """Matching (image, box) slices for a box whose voxel ``centre_offset`` sits on ``centre_kji``."""
    image_slices, box_slices = [], []
    for c, o, b, n in zip(centre_kji, centre_offset, box_shape, image_shape):
        start = c - o
        lo, hi = max(start, 0), min(start + b, n)
        image_slices.append(slice(lo, hi))
        box_slices.append(slice(lo - start, hi - start))
    return tuple(image_slices), tuple(box_slices)


def _texture(rng: np.random.Generator, shape, sampling, sigma_mm: float) -> np.ndarray:
    noise = rng.standard_normal(shape).astype(np.float32)
    smooth = ndimage.gaussian_filter(noise, sigma=[sigma_mm / s for s in sampling])
    return smooth / max(float(smooth.std()), 1e-6)
