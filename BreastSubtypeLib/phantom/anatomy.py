"""Post-contrast, fat-suppressed breast anatomy around the tumour.

Built in index space with millimetre coordinates ``x = i * sx`` (towards the patient's left),
``y = j * sy`` (posterior) and ``z = k * sz`` (superior), which is an axial prone breast MRI in LPS
when the direction is the identity: air in front, one (small field of view) or two breasts
hanging anteriorly, a thin skin line, dark suppressed fat, fibroglandular tissue with background
parenchymal enhancement (BPE), enhancing vessels, the pectoralis muscle and the thorax behind it.
The caller attaches spacing, origin and direction afterwards, so flipped or oblique images keep the
same anatomy in index space and exact physical geometry.

Smooth random fields are cubic B-splines on a coarse grid, evaluated separably slab by slab, so a
512x512x160 volume needs no full-size temporaries beyond the float32 image and a uint8 tissue map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

AIR, SKIN, FAT, FIBROGLANDULAR, MUSCLE, THORAX, HEART, VESSEL = range(8)
BREAST_TISSUES = (FAT, FIBROGLANDULAR)

# Signal before bias field, gain and noise (12-bit scale, post-contrast fat-suppressed T1).
INTENSITY = {
    SKIN: 820.0,
    FAT: 230.0,
    FIBROGLANDULAR: 520.0,
    MUSCLE: 600.0,
    THORAX: 150.0,
    HEART: 1250.0,
    VESSEL: 2300.0,
}
SKIN_MM = 1.8
SLAB = 16  # slices rendered at a time: bounds the size of temporaries


@dataclass
class Breast:
    centre_mm: tuple[float, float, float]  # (x, y, z) in the index-aligned millimetre frame
    semi_axes_mm: tuple[float, float, float]

    def inner_contains(self, point_mm, margin_mm: float) -> bool:
        """True when ``point_mm`` lies at least ``margin_mm`` inside the breast (conservative)."""
        axes = [a - margin_mm for a in self.semi_axes_mm]
        if min(axes) <= 0:
            return False
        return sum(((p - c) / a) ** 2 for p, c, a in zip(point_mm, self.centre_mm, axes)) < 1.0


@dataclass
class Layout:
    size_ijk: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    chest_y_mm: float  # anterior surface of the pectoralis at the midline
    chest_curvature: float  # the chest wall curves posteriorly towards the sides (1/mm)
    presternal_fat_mm: float
    muscle_mm: float
    breasts: list[Breast] = field(default_factory=list)
    fgt_density: float = 0.8  # shifts how much of the breast is fibroglandular
    bpe_level: float = 0.5  # background parenchymal enhancement, fraction of fibroglandular signal

    @property
    def fov_mm(self) -> tuple[float, float, float]:
        return tuple(n * s for n, s in zip(self.size_ijk, self.spacing_mm))

    def chest_surface_y(self, x_mm):
        return self.chest_y_mm + self.chest_curvature * (x_mm - self.fov_mm[0] / 2) ** 2


def sample_layout(rng: np.random.Generator, size_ijk, spacing_mm) -> Layout:
    fx, fy, fz = (n * s for n, s in zip(size_ijk, spacing_mm))
    # Small fields of view are a zoomed unilateral view: chest further back, breast fills the width.
    chest_fraction = float(np.interp(fy, [100.0, 300.0], [0.80, 0.55]))
    depth_fraction = float(np.interp(fy, [100.0, 300.0], [0.75, 0.42]))
    chest_y = fy * chest_fraction * rng.uniform(0.97, 1.03)
    depth = min(depth_fraction * fy, 115.0) * rng.uniform(0.88, 1.05)
    height = float(np.clip(0.7 * fz, 25.0, 90.0)) * rng.uniform(0.92, 1.05)
    z_centre = fz / 2 * rng.uniform(0.95, 1.05)
    layout = Layout(
        size_ijk=tuple(size_ijk),
        spacing_mm=tuple(spacing_mm),
        chest_y_mm=chest_y,
        chest_curvature=rng.uniform(0.08, 0.16) * fy / max(fx / 2, 1.0) ** 2,
        presternal_fat_mm=rng.uniform(6.0, 14.0),
        muscle_mm=rng.uniform(8.0, 14.0),
        fgt_density=rng.uniform(0.2, 1.4),
        bpe_level=rng.uniform(0.1, 0.8),
    )
    if fx >= 220.0:
        width = min(0.21 * fx, 85.0) * rng.uniform(0.9, 1.05)
        centres_x = [fx / 2 - 0.25 * fx, fx / 2 + 0.25 * fx]
    else:
        width = 0.56 * fx * rng.uniform(0.95, 1.02)
        centres_x = [fx / 2]
    for x in centres_x:
        y = float(layout.chest_surface_y(x))
        layout.breasts.append(Breast((x, y, z_centre), (width, depth, height)))
    return layout


class SmoothField:
    """A unit-variance random field, cubic B-spline on a ``cell_mm`` grid, evaluated slab by slab.

    Each output voxel mixes 4 coarse nodes per axis, so interpolation is 4 gathers per axis.
    """

    def __init__(self, rng: np.random.Generator, size_ijk, spacing_mm, cell_mm: float) -> None:
        (bx, wx), (by, wy), (bz, wz) = (_bspline_weights(n, s, cell_mm) for n, s in zip(size_ijk, spacing_mm))
        coarse = rng.standard_normal((int(bz.max()) + 4, int(by.max()) + 4, int(bx.max()) + 4))
        coarse = (coarse / math.sqrt(0.3)).astype(np.float32)  # ~unit variance after 3-D smoothing
        along_x = sum(wx[:, o] * coarse[:, :, bx + o] for o in range(4))  # (cz, cy, nx)
        self._zyx = sum(wy[:, o, None] * along_x[:, by + o, :] for o in range(4))  # (cz, ny, nx)
        self._bz, self._wz = bz, wz

    def slab(self, k0: int, k1: int) -> np.ndarray:
        base, weights = self._bz[k0:k1], self._wz[k0:k1]
        return sum(weights[:, o, None, None] * self._zyx[base + o] for o in range(4))


def _bspline_weights(n: int, spacing: float, cell_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """First coarse node and the 4 cubic B-spline weights of each of ``n`` samples."""
    p = np.arange(n) * spacing / cell_mm
    base = np.floor(p).astype(np.intp)
    t = (p - base).astype(np.float32)
    weights = np.stack([(1 - t) ** 3 / 6, (3 * t**3 - 6 * t**2 + 4) / 6,
                        (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6, t**3 / 6], axis=1)  # fmt: skip
    return base, weights


def render_anatomy(layout: Layout, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Signal (float32) and tissue labels (uint8), both indexed [k, j, i]."""
    nx, ny, nz = layout.size_ijk
    sx, sy, sz = layout.spacing_mm
    fx, fy, fz = layout.fov_mm
    image = np.empty((nz, ny, nx), np.float32)
    tissue = np.empty((nz, ny, nx), np.uint8)
    fgt_field = SmoothField(rng, layout.size_ijk, layout.spacing_mm, cell_mm=6.0)
    bpe_field = SmoothField(rng, layout.size_ijk, layout.spacing_mm, cell_mm=22.0)

    x = (np.arange(nx, dtype=np.float32) * sx)[None, None, :]
    y = (np.arange(ny, dtype=np.float32) * sy)[None, :, None]
    behind_chest = y - layout.chest_surface_y(x)  # (1, ny, nx), mm posterior of the chest wall
    wall = np.full(behind_chest.shape, AIR, np.uint8)
    wall[behind_chest >= -(layout.presternal_fat_mm + SKIN_MM)] = SKIN
    wall[behind_chest >= -layout.presternal_fat_mm] = FAT
    wall[behind_chest >= 0] = MUSCLE
    wall[behind_chest >= layout.muscle_mm] = THORAX
    heart_centre = (fx / 2, layout.chest_y_mm + layout.muscle_mm + 0.22 * fy, fz / 2)
    heart_axes = (0.18 * fx, 0.16 * fy, 0.45 * fz)

    for k0 in range(0, nz, SLAB):
        k1 = min(k0 + SLAB, nz)
        z = (np.arange(k0, k1, dtype=np.float32) * sz)[:, None, None]
        labels = np.broadcast_to(wall, (k1 - k0, ny, nx)).copy()
        heart = ((x - heart_centre[0]) / heart_axes[0]) ** 2 + (
            (y - heart_centre[1]) / heart_axes[1]
        ) ** 2 + ((z - heart_centre[2]) / heart_axes[2]) ** 2 < 1.0
        labels[heart & (labels == THORAX)] = HEART
        rho = np.full(labels.shape, np.inf, np.float32)
        depth = np.zeros(labels.shape, np.float32)
        for breast in layout.breasts:
            (cx, cy, cz), (a, b, c) = breast.centre_mm, breast.semi_axes_mm
            # Only the breast's bounding box: most of a bilateral volume is outside either breast.
            box = tuple(
                slice(
                    max(lo, math.floor((centre - half) / step)),
                    min(hi, math.ceil((centre + half) / step) + 1),
                )
                for centre, half, step, lo, hi in (
                    (cz, c, sz, k0, k1),
                    (cy, b, sy, 0, ny),
                    (cx, a, sx, 0, nx),
                )
            )
            if any(part.stop <= part.start for part in box):
                continue
            box = (slice(box[0].start - k0, box[0].stop - k0), box[1], box[2])
            u, v, w = (x[:, :, box[2]] - cx) / a, (y[:, box[1]] - cy) / b, (z[box[0]] - cz) / c
            r = np.sqrt(u * u + v * v + w * w)
            # First-order distance to the ellipsoid surface: (1 - rho) / |grad rho|.
            grad = np.sqrt((u / a) ** 2 + (v / b) ** 2 + (w / c) ** 2) / np.maximum(r, 1e-6)
            d = (1.0 - r) / np.maximum(grad, 1e-6)
            closer = r < rho[box]
            rho[box] = np.where(closer, r, rho[box])
            depth[box] = np.where(closer, d, depth[box])
        anterior = behind_chest < 0
        in_breast = (rho < 1.0) & anterior
        interior = in_breast & (depth >= SKIN_MM)
        labels[in_breast & ~interior & (labels == AIR)] = SKIN
        fgt = fgt_field.slab(k0, k1) + 1.6 * (layout.fgt_density - 0.5) - 2.5 * rho**2 + 0.3
        labels[interior] = np.where(fgt[interior] > 0.0, FIBROGLANDULAR, FAT)

        bpe = bpe_field.slab(k0, k1)
        slab_image = np.zeros(labels.shape, np.float32)
        for label, value in INTENSITY.items():
            slab_image[labels == label] = value
        is_fgt = labels == FIBROGLANDULAR
        slab_image[is_fgt] *= 1.0 + layout.bpe_level * np.clip(0.6 + 0.5 * bpe[is_fgt], 0.0, 1.5)
        is_fat = labels == FAT
        slab_image[is_fat] *= 1.0 + 0.08 * bpe[is_fat]
        image[k0:k1] = slab_image
        tissue[k0:k1] = labels
    return image, tissue


def paint_vessels(image, tissue, layout: Layout, rng: np.random.Generator, keep_out) -> None:
    """Enhancing vessels running from the chest wall towards the nipple, through breast tissue only.

    ``keep_out`` is a list of (centre_mm, radius_mm) spheres (the lesions and their peritumoral
    band) that vessels skip, so the band's signal stays the tumour's.
    """
    spacing = np.asarray(layout.spacing_mm)
    size = np.asarray(layout.size_ijk)
    for breast in layout.breasts:
        (cx, _, cz), (a, b, c) = breast.centre_mm, breast.semi_axes_mm
        for _ in range(int(rng.integers(3, 7))):
            radius = rng.uniform(0.7, 1.6)
            value = INTENSITY[VESSEL] * rng.uniform(0.8, 1.1)
            point = np.array([cx + a * rng.uniform(-0.6, 0.6), 0.0, cz + c * rng.uniform(-0.6, 0.6)])
            point[1] = layout.chest_surface_y(point[0]) - 1.0
            direction = np.array([rng.normal(0, 0.4), -1.0, rng.normal(0, 0.15)])
            step = max(0.6 * radius, 0.5 * spacing.min())
            for _ in range(int(1.1 * b / step)):
                direction += rng.normal(0, 0.04 * math.sqrt(step), 3)
                direction /= np.linalg.norm(direction)
                point = point + step * direction
                if any(np.linalg.norm(point - np.asarray(ctr)) < rad for ctr, rad in keep_out):
                    continue
                centre_index = point / spacing
                lo = np.maximum(np.floor(centre_index - (radius + 1) / spacing), 0).astype(int)
                hi = np.minimum(np.ceil(centre_index + (radius + 1) / spacing) + 1, size).astype(int)
                if np.any(hi <= lo):
                    break
                grids = [(np.arange(lo[d], hi[d]) * spacing[d] - point[d]) ** 2 for d in range(3)]
                dist2 = grids[2][:, None, None] + grids[1][None, :, None] + grids[0][None, None, :]
                box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
                inside = (dist2 < radius**2) & np.isin(tissue[box], (FAT, FIBROGLANDULAR, VESSEL))
                if not inside.any():
                    if tissue[tuple(int(round(v)) for v in np.clip(centre_index, 0, size - 1)[::-1])] == AIR:
                        break  # left the breast
                    continue
                profile = value * (1.0 - 0.3 * dist2 / radius**2)
                image[box] = np.where(inside, np.maximum(image[box], profile), image[box])
                tissue[box][inside] = VESSEL
