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
- size (``lesion_size``): diameter 8 + 27 t(1.2 size) mm unless given.
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


def diameter_from_latent(size_latent: float) -> float:
    return 8.0 + 27.0 * _t(1.2 * size_latent)


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


def appearance_from_latents(z: dict, rng: np.random.Generator, diameter_mm: float | None) -> LesionAppearance:
    t_r, t_p = _t(1.7 * z["rim_enhancement"]), _t(1.8 * z["peritumoral_oedema"] - 0.3)
    t_s, t_h = _t(1.6 * z["margin_spiculation"]), _t(1.7 * z["internal_heterogeneity"])
    return LesionAppearance(
        diameter_mm=float(diameter_mm if diameter_mm is not None else diameter_from_latent(z["lesion_size"])),
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
class LesionBox:
    """A lesion rendered in its bounding box (index slices of the full [k, j, i] array)."""

    box: tuple[slice, slice, slice]
    mask: np.ndarray  # bool, tumour
    intensity: np.ndarray  # float32, tumour signal (valid inside mask)
    peritumoral: np.ndarray  # float32, signal added outside the mask


def render_lesion(
    appearance: LesionAppearance, centre_index, spacing_mm, size_ijk, rng: np.random.Generator
) -> LesionBox:
    """Shape and signal of one lesion centred at continuous index ``centre_index`` (i, j, k).

    The random draws do not depend on the peritumoral level, so changing only that latent feature
    changes the image only outside the tumour.
    """
    spacing = np.asarray(spacing_mm, float)
    radius = appearance.diameter_mm / 2
    half = (appearance.max_extent_mm + PERITUMORAL_EXTENT_MM + 1.0) / spacing
    centre = np.asarray(centre_index, float)
    lo = np.maximum(np.floor(centre - half), 0).astype(int)
    hi = np.minimum(np.ceil(centre + half) + 1, np.asarray(size_ijk)).astype(int)
    axes = [((np.arange(lo[d], hi[d]) - centre[d]) * spacing[d]).astype(np.float32) for d in range(3)]
    dx, dy, dz = axes[0][None, None, :], axes[1][None, :, None], axes[2][:, None, None]
    distance = np.sqrt(dx * dx + dy * dy + dz * dz)
    safe = np.maximum(distance, 1e-6)
    ux, uy, uz = dx / safe, dy / safe, dz / safe

    lobes = _unit_vectors(rng, 6)
    lobe_weights = rng.standard_normal(6)
    spicules = _unit_vectors(rng, appearance.spicule_count)
    spicule_scale = rng.uniform(0.5, 1.0, appearance.spicule_count)
    lobulation = np.zeros_like(distance)
    for v, weight in zip(lobes, lobe_weights):
        lobulation += weight * np.exp(4.0 * (ux * v[0] + uy * v[1] + uz * v[2] - 1.0))
    lobulation = np.clip(
        appearance.lobulation * lobulation, -2 * appearance.lobulation, 2 * appearance.lobulation
    )
    spiculation = np.zeros_like(distance)
    for v, scale in zip(spicules, spicule_scale):
        cosine = ux * v[0] + uy * v[1] + uz * v[2]
        np.maximum(spiculation, scale * np.exp((cosine - 1.0) / 0.004), out=spiculation)
    boundary = radius * (1.0 + lobulation + appearance.spicule_length * spiculation)
    mask = distance <= boundary
    mask[tuple(int(round(c)) - low for c, low in zip(centre[::-1], lo[::-1]))] = True  # never empty

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
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    return LesionBox(box, mask, intensity.astype(np.float32), peritumoral.astype(np.float32))


def _texture(rng: np.random.Generator, shape, sampling, sigma_mm: float) -> np.ndarray:
    noise = rng.standard_normal(shape).astype(np.float32)
    smooth = ndimage.gaussian_filter(noise, sigma=[sigma_mm / s for s in sampling])
    return smooth / max(float(smooth.std()), 1e-6)
