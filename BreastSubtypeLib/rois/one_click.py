"""The tumour from one click: a classical, bounded segmentation of an enhancing lesion (no learned weights).

1. Smooth lightly (0.6 mm Gaussian). Threshold by Otsu within a ball around the seed that starts at
   8 mm and grows until the region ends within 70 % of its radius, so the split is the lesion against
   its own surroundings, not fat against parenchyma.
2. Open with a 1 mm ball (cuts thin vessels touching the lesion), keep the connected region at the
   seed (or the one whose closed hole holds it, or one within 5 mm of it: a click in a necrotic
   centre), close and fill holes (necrosis is tumour).
3. A region that reaches its bound or is not a compact mass (vessel tree, leak into parenchyma) is
   retried with the threshold raised towards the brightest signal.
4. Nothing acceptable and the seed is dark: it may lie in the large necrotic centre of a
   rim-enhancing lesion (the triple-negative look). Rays cast from the seed in 256 directions; when
   at least 80 % meet a wall at least twice as bright as the centre within 30 mm, the wall is the
   enhancing shell they meet (threshold halfway from centre to wall) and the tumour is that shell
   plus the star-shaped centre up to each ray's crossing, closed and filled (so a wall with gaps
   still encloses its centre). The result says so in its warnings.
5. If none is acceptable, refuse. Also refused: a seed outside the image or in air, no enhancement
   over the surroundings, a region too small to be a mass.

The search region is a ball of radius ``max_diameter_mm`` around the seed, or the user's box.
How close the result comes to the truth on phantoms: ``benchmarks/bench_one_click.py``.

>>> result = segment_tumour_from_seed(image, (12.0, -40.5, 8.0), seed_space="RAS")  # doctest: +SKIP
>>> result.volume_ml, result.warnings  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from skimage.filters import threshold_otsu

from BreastSubtypeLib.errors import TumourSegmentationError
from BreastSubtypeLib.imaging.geometry import physical_to_continuous_index, ras_to_lps
from BreastSubtypeLib.rois.regions import MIN_TUMOUR_VOLUME_ML, tissue_threshold

START_RADIUS_MM = 8.0
FIT_FRACTION = 0.7  # the region must end within this fraction of the Otsu ball's radius
THRESHOLD_RAISES = (0.0, 0.25, 0.5)  # tried in turn while the region leaks (to its bound, or thinly)
MIN_COMPACTNESS = 0.15  # see _compactness: phantom lesions 0.22-0.77, vessel trees and leaks 0.05-0.11
MIN_ENHANCEMENT_RATIO = 1.4  # lesion / surrounding tissue signal below which nothing enhances
SMOOTHING_MM = 0.6
OPENING_MM = 1.0
CLOSING_MM = 2.0
NEARBY_MM = 5.0  # a click in a necrotic centre: the enhancing wall within this distance
RAY_COUNT = 256  # rays from a dark seed looking for an enclosing enhancing wall
RAY_STEP_MM = 0.5
RIM_REACH_MM = 30.0  # the largest non-enhancing centre looked for
RIM_CONTRAST = 2.0  # wall / centre signal below which the dark centre is not walled by enhancement
ENCLOSED_FRACTION = 0.8  # rays that must meet the wall for the centre to count as enclosed
WALL_SEARCH_MM = 2.0  # how far past a ray's crossing the wall component is looked for
WALL_SHARE = 0.1  # a component met by fewer of the rays (a crossing vessel) is not the wall
DARK_CENTRE_FRACTION = 0.25  # a seed this dark against the lesion lies in its non-enhancing centre


@dataclass
class OneClickResult:
    mask: sitk.Image  # uint8 0/1 on the input grid
    volume_ml: float
    warnings: list[str] = field(default_factory=list)


def _to_lps(point: Sequence[float], space: str) -> tuple[float, float, float]:
    if space not in ("RAS", "LPS"):
        raise TumourSegmentationError(f"Unknown seed space {space!r}: use 'RAS' or 'LPS'.")
    point = tuple(float(v) for v in point)
    if len(point) != 3 or not all(math.isfinite(v) for v in point):
        raise TumourSegmentationError(f"The seed {point} is not a 3-D point.")
    return ras_to_lps(point) if space == "RAS" else point


def _ball(radius_mm: float, spacing_kji) -> np.ndarray:
    half = [int(math.floor(radius_mm / s)) for s in spacing_kji]
    grids = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    return sum((g * s) ** 2 for g, s in zip(grids, spacing_kji)) <= radius_mm**2


def _compactness(region: np.ndarray, extent_mm: float, spacing_kji) -> float:
    """Region volume over the ball reaching its farthest voxel from the seed: 1 for a ball clicked at
    its centre, ~0.3 for lesions clicked near their middle, < 0.15 for vessel trees and leaks."""
    voxel_mm3 = float(np.prod(spacing_kji))
    reach_mm = max(extent_mm, float(max(spacing_kji)))
    return float(region.sum()) * voxel_mm3 / (4.0 / 3.0 * math.pi * reach_mm**3)


def _close_and_fill(mask: np.ndarray, closing: np.ndarray) -> np.ndarray:
    """Closing (zero outside the array) then hole filling, on the mask's bounding box only: the same
    result as on the whole array, at a fraction of the cost."""
    present = np.nonzero(mask)
    if present[0].size == 0:
        return mask
    pad = [n // 2 + 1 for n in closing.shape]
    box = tuple(
        slice(max(int(p.min()) - m, 0), min(int(p.max()) + 1 + m, n))
        for p, m, n in zip(present, pad, mask.shape)
    )
    inner = mask[box]
    closed = ndimage.binary_fill_holes(
        ndimage.binary_closing(inner, structure=closing, border_value=0) | inner
    )
    out = mask.copy()
    out[box] = closed
    return out


def _region_at_seed(candidate, opening, closing, distance_mm, seed_in_crop) -> np.ndarray:
    """The opened, hole-filled connected part of ``candidate`` at the seed (or within 5 mm of it)."""
    candidate = ndimage.binary_opening(candidate, structure=opening)
    components, _ = ndimage.label(candidate, structure=np.ones((3, 3, 3), bool))
    label = components[seed_in_crop]
    if label == 0:
        label = _enclosing_label(components, seed_in_crop)
    if label == 0:
        # A click just off the enhancing wall, or in a necrotic centre open to one side.
        nearby = components[(distance_mm <= NEARBY_MM) & (components > 0)]
        if nearby.size == 0:
            return np.zeros(candidate.shape, bool)
        label = np.bincount(nearby).argmax()
    # Closing first so a necrotic centre that opens onto the surface is still filled.
    return _close_and_fill(components == label, closing)


def _enclosing_label(components: np.ndarray, seed_in_crop) -> int:
    """The component whose hole holds the seed (a closed necrotic centre), or 0."""
    background, _ = ndimage.label(components == 0)
    pocket_label = background[seed_in_crop]
    pocket = background == pocket_label
    if any(pocket.take(0, axis=a).any() or pocket.take(-1, axis=a).any() for a in range(3)):
        return 0
    walls = components[ndimage.binary_dilation(pocket, structure=np.ones((3, 3, 3), bool)) & ~pocket]
    walls = walls[walls > 0]
    return int(np.bincount(walls).argmax()) if walls.size else 0


def _ray_directions(count: int) -> np.ndarray:
    """``count`` unit vectors spread evenly over the sphere (a Fibonacci lattice), in the (k, j, i)
    millimetre frame; the image direction is a rotation, so they are as even in patient space."""
    n = np.arange(count) + 0.5
    axial = 1.0 - 2.0 * n / count
    radial = np.sqrt(1.0 - axial**2)
    azimuth = math.pi * (1.0 + math.sqrt(5.0)) * n
    return np.stack([axial, radial * np.cos(azimuth), radial * np.sin(azimuth)], axis=1)


def _star_region(hit_mm: np.ndarray, directions: np.ndarray, seed_in_crop, spacing_kji, shape) -> np.ndarray:
    """Voxels nearer the seed than the wall along the ray closest to their direction."""
    reach_mm = float(hit_mm.max())
    half = np.ceil(reach_mm / spacing_kji).astype(int)
    low = np.maximum(np.asarray(seed_in_crop) - half, 0)
    high = np.minimum(np.asarray(seed_in_crop) + half + 1, shape)
    grids = np.meshgrid(*(np.arange(a, b) for a, b in zip(low, high)), indexing="ij")
    offsets_mm = np.stack([(g - c) * sp for g, c, sp in zip(grids, seed_in_crop, spacing_kji)], axis=-1)
    offsets_mm = offsets_mm.reshape(-1, 3).astype(np.float32)
    radius_mm = np.linalg.norm(offsets_mm, axis=1)
    inside = np.zeros(radius_mm.shape, bool)
    for start in range(0, radius_mm.size, 8192):  # bounded temporaries for large centres
        part = slice(start, start + 8192)
        nearest = np.argmax(offsets_mm[part] @ directions.T.astype(np.float32), axis=1)
        inside[part] = radius_mm[part] <= hit_mm[nearest]
    region = np.zeros(shape, bool)
    region[tuple(slice(a, b) for a, b in zip(low, high))] = inside.reshape(grids[0].shape)
    return region


@dataclass
class _Rays:
    """Intensity profiles along rays cast from the seed (``-inf`` beyond the search region)."""

    directions: np.ndarray  # (rays, 3) unit vectors, (k, j, i) millimetre frame
    steps_mm: np.ndarray  # (samples,) distance of each sample from the seed
    voxels: np.ndarray  # (rays, samples, 3) the voxel under each sample
    profiles: np.ndarray  # (rays, samples)


def _cast_rays(smoothed, search, seed_in_crop, spacing_kji, reach_mm: float) -> _Rays:
    directions = _ray_directions(RAY_COUNT)
    steps_mm = np.arange(RAY_STEP_MM, reach_mm + 1e-6, RAY_STEP_MM)
    points = np.asarray(seed_in_crop, float) + directions[:, None, :] * (steps_mm[:, None] / spacing_kji)
    shape = np.asarray(smoothed.shape)
    voxels = np.clip(np.round(points).astype(int), 0, shape - 1)
    within = np.all((points >= -0.5) & (points <= shape - 0.5), axis=2)
    within &= search[tuple(voxels.transpose(2, 0, 1))]
    profiles = ndimage.map_coordinates(smoothed, points.reshape(-1, 3).T, order=1, mode="nearest")
    return _Rays(directions, steps_mm, voxels, np.where(within, profiles.reshape(within.shape), -np.inf))


def _enclosing_wall(rays: _Rays, threshold, smoothed, search, seed_in_crop, spacing_kji, opening, closing):
    """The enhancing shell (above ``threshold``) that most rays from the seed meet, filled with what it
    encloses; None when too few rays meet it (the dark centre is not enclosed)."""
    above = rays.profiles > threshold
    first = above.argmax(axis=1)
    hit = above.any(axis=1)
    if hit.mean() < ENCLOSED_FRACTION:
        return None
    components, _ = ndimage.label(
        ndimage.binary_opening(search & (smoothed > threshold), structure=opening),
        structure=np.ones((3, 3, 3), bool),
    )
    # The component met at each crossing (or just beyond it: the opening trims thin wall edges).
    along = components[tuple(rays.voxels.transpose(2, 0, 1))]
    window = int(round(WALL_SEARCH_MM / RAY_STEP_MM)) + 1
    met = np.zeros(len(first), int)
    for ray in np.flatnonzero(hit):
        labels = along[ray, first[ray] : first[ray] + window]
        labels = labels[labels > 0]
        met[ray] = labels[0] if labels.size else 0
    if np.mean(met > 0) < ENCLOSED_FRACTION:
        return None
    counts = np.bincount(met[met > 0])
    # The wall: the shell met by most rays; a vessel crossing a few rays is not part of it.
    wall = np.isin(components, np.flatnonzero(counts >= WALL_SHARE * counts.sum()))
    hit_mm = np.where(met > 0, rays.steps_mm[first], 0.0)
    centre = _star_region(hit_mm, rays.directions, seed_in_crop, spacing_kji, smoothed.shape)
    return _close_and_fill(wall | centre, closing), wall


@dataclass
class _Candidate:
    """A region grown at the seed and what decides whether it is a lesion."""

    region: np.ndarray  # bool, on the search crop
    extent_mm: float  # farthest voxel from the seed
    within_bound: bool  # ends inside the search ball (always with a user's box)
    compactness: float
    threshold: float
    ball: np.ndarray | None = None  # the tissue whose median is "the surroundings"
    wall: np.ndarray | None = None  # the enhancing shell of a rim-enhancing lesion

    @property
    def acceptable(self) -> bool:
        return bool(self.region.any()) and self.within_bound and self.compactness >= MIN_COMPACTNESS


@dataclass
class _Neighbourhood:
    """The image around the seed, in the search crop: what every step of the search reads."""

    crop: tuple[slice, ...]  # of the image array, [k, j, i]
    low: np.ndarray  # first voxel of the crop (k, j, i)
    high: np.ndarray  # one past its last voxel
    shape_kji: tuple[int, ...]  # of the whole image
    seed_in_crop: tuple[int, int, int]
    spacing_kji: np.ndarray
    bound_mm: float | None  # radius of the search ball; None inside a user's box
    smoothed: np.ndarray
    distance_mm: np.ndarray  # from the seed
    search: np.ndarray  # bool: where the lesion may lie
    tissue: np.ndarray  # bool: search region above the air level
    opening: np.ndarray
    closing: np.ndarray

    @property
    def limit_mm(self) -> float:
        return self.bound_mm if self.bound_mm is not None else float(self.distance_mm.max())

    def candidate(self, region: np.ndarray, threshold: float, **parts) -> _Candidate:
        extent_mm = float(self.distance_mm[region].max()) if region.any() else 0.0
        within_bound = self.bound_mm is None or extent_mm <= self.bound_mm - float(max(self.spacing_kji))
        compactness = _compactness(region, extent_mm, self.spacing_kji)
        return _Candidate(region, extent_mm, within_bound, compactness, threshold, **parts)


def _rim_enhancing_lesion(around: _Neighbourhood) -> _Candidate | None:
    """An enhancing wall enclosing a dark seed, filled, retried with a raised threshold while it
    leaks; None when no wall encloses the seed."""
    smoothed, distance_mm = around.smoothed, around.distance_mm
    rays = _cast_rays(
        smoothed, around.search, around.seed_in_crop, around.spacing_kji, min(RIM_REACH_MM, around.limit_mm)
    )
    centre_level = float(np.median(smoothed[distance_mm <= 1.5]))
    wall_level = float(np.median(rays.profiles.max(axis=1)))  # the brightest met along each ray
    if not wall_level >= RIM_CONTRAST * centre_level:
        return None
    result = None
    for raise_fraction in THRESHOLD_RAISES:
        # Halfway from the dark centre to the wall, raised towards the wall after a leak.
        threshold = centre_level + (0.5 + 0.5 * raise_fraction) * (wall_level - centre_level)
        found = _enclosing_wall(
            rays, threshold, smoothed, around.search, around.seed_in_crop, around.spacing_kji,
            around.opening, around.closing,
        )  # fmt: skip
        if found is None:
            break
        region, wall = found
        result = around.candidate(region, threshold, wall=wall)
        if result.within_bound and result.compactness >= MIN_COMPACTNESS:
            break
    if result is not None:
        result.ball = (distance_mm <= result.extent_mm / FIT_FRACTION) & around.tissue
    return result


def _neighbourhood(image, seed, seed_space, box, max_diameter_mm) -> _Neighbourhood:
    """The crop searched for the lesion: the user's box, or a ball of ``max_diameter_mm`` at the seed."""
    seed_lps = _to_lps(seed, seed_space)
    size = np.asarray(image.GetSize())
    seed_ijk = np.asarray(physical_to_continuous_index(image, seed_lps))
    if np.any(seed_ijk < -0.5) or np.any(seed_ijk > size - 0.5):
        raise TumourSegmentationError(
            f"The seed {tuple(round(v, 1) for v in seed)} ({seed_space}) lies outside the image."
        )
    seed_voxel = np.clip(np.round(seed_ijk).astype(int), 0, size - 1)[::-1]  # (k, j, i)
    spacing_kji = np.asarray(image.GetSpacing())[::-1]
    if box is not None:
        corners = np.asarray([physical_to_continuous_index(image, _to_lps(c, seed_space)) for c in box])[
            :, ::-1
        ]
        low = np.clip(np.floor(corners.min(axis=0) + 0.5).astype(int), 0, size[::-1] - 1)
        high = np.clip(np.floor(corners.max(axis=0) + 0.5).astype(int), 0, size[::-1] - 1) + 1
        if np.any(seed_voxel < low) or np.any(seed_voxel >= high):
            raise TumourSegmentationError("The seed lies outside the box drawn around the lesion.")
        bound_mm = None
    else:
        half = np.ceil(max_diameter_mm / spacing_kji).astype(int)
        low = np.maximum(seed_voxel - half, 0)
        high = np.minimum(seed_voxel + half + 1, size[::-1])
        bound_mm = float(max_diameter_mm)
    crop = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    seed_in_crop = tuple(int(v) for v in seed_voxel - low)

    values = np.asarray(sitk.GetArrayViewFromImage(image)[crop], dtype=np.float32)
    smoothed = ndimage.gaussian_filter(values, sigma=SMOOTHING_MM / spacing_kji, mode="nearest")
    grids = np.ogrid[tuple(slice(0, n) for n in values.shape)]
    distance_mm = np.sqrt(sum(((g - c) * s) ** 2 for g, c, s in zip(grids, seed_in_crop, spacing_kji)))
    search = distance_mm <= bound_mm if bound_mm is not None else np.ones(values.shape, bool)
    air_level = tissue_threshold(image)
    if np.median(smoothed[distance_mm <= 1.5]) <= air_level and smoothed[seed_in_crop] <= air_level:
        raise TumourSegmentationError(
            "The seed lies in air, not on the lesion; click inside the enhancing lesion."
        )
    return _Neighbourhood(
        crop, low, high, tuple(size[::-1]), seed_in_crop, spacing_kji, bound_mm, smoothed, distance_mm,
        search, search & (smoothed > air_level), _ball(OPENING_MM, spacing_kji), _ball(CLOSING_MM, spacing_kji),
    )  # fmt: skip


def _grow_at_seed(around: _Neighbourhood) -> _Candidate:
    """Otsu within a ball about 1.5x the lesion, grown until the region sits well inside it; the
    threshold raised towards the brightest signal while the region leaks."""
    smoothed, distance_mm = around.smoothed, around.distance_mm
    for raise_fraction in THRESHOLD_RAISES:
        radius_mm = START_RADIUS_MM
        while True:
            # Tumour against its own surroundings, not fat against parenchyma.
            ball = (distance_mm <= radius_mm) & around.tissue
            otsu = threshold_otsu(smoothed[ball])
            # After a leak, move the threshold towards the brightest signal around the seed.
            threshold = otsu + raise_fraction * (np.percentile(smoothed[ball], 99) - otsu)
            region = _region_at_seed(
                around.search & (smoothed > threshold), around.opening, around.closing, distance_mm,
                around.seed_in_crop,
            )  # fmt: skip
            extent_mm = float(distance_mm[region].max()) if region.any() else 0.0
            if extent_mm <= FIT_FRACTION * radius_mm or radius_mm >= around.limit_mm:
                break
            radius_mm = min(extent_mm / FIT_FRACTION * 1.05, around.limit_mm)
        found = around.candidate(region, threshold, ball=ball)
        if not region.any() or found.acceptable:
            break  # a higher threshold finds nothing either, or this one is a lesion
    return found


def _refuse_unless_lesion(found: _Candidate, around: _Neighbourhood, volume_ml: float) -> None:
    """Refuse, naming why, a region that does not enhance or is not a bounded, compact mass."""
    surroundings = found.ball & ~found.region
    smoothed = around.smoothed
    background = float(np.median(smoothed[surroundings])) if surroundings.any() else found.threshold
    lesion_level = float(np.median(smoothed[found.region if found.wall is None else found.wall]))
    if lesion_level < MIN_ENHANCEMENT_RATIO * background:
        raise TumourSegmentationError(
            f"Nothing enhances at the seed ({lesion_level:.0f} vs {background:.0f} in the surrounding tissue); "
            "click inside an enhancing lesion."
        )
    if found.within_bound and found.compactness < MIN_COMPACTNESS:
        raise TumourSegmentationError(
            "The enhancing region at the seed is not a compact mass (a vessel or enhancing parenchyma); "
            "click inside the lesion, draw a box around it, or segment it by hand."
        )
    if not found.within_bound:
        raise TumourSegmentationError(
            f"The region grown from the seed reached its {around.bound_mm:g} mm bound (it leaked into enhancing "
            "parenchyma or vessels); draw a box around the lesion or segment it by hand."
        )
    if volume_ml < MIN_TUMOUR_VOLUME_ML:
        raise TumourSegmentationError(
            f"The enhancing region at the seed is only {volume_ml * 1000:.0f} mm³, too small for a mass; "
            "click inside the lesion or segment it by hand."
        )


def _warnings(found: _Candidate, around: _Neighbourhood, user_box: bool) -> list[str]:
    warnings: list[str] = []
    region, smoothed = found.region, around.smoothed
    centre_level = float(np.median(smoothed[around.distance_mm <= 1.5]))
    if found.wall is not None or centre_level <= DARK_CENTRE_FRACTION * float(np.median(smoothed[region])):
        warnings.append(
            "Rim-enhancing lesion with a non-enhancing centre (necrosis?) at the seed: the tumour includes "
            "the enclosed centre; check its outline."
        )
    low, high, shape = around.low, around.high, around.shape_kji
    touches_box = [
        (region.take(0, axis=a).any() and low[a] > 0)
        or (region.take(-1, axis=a).any() and high[a] < shape[a])
        for a in range(3)
    ]
    if user_box and any(touches_box):
        warnings.append("The lesion reaches the edge of the box; it may extend beyond it.")
    if any(
        (region.take(0, axis=a).any() and low[a] == 0)
        or (region.take(-1, axis=a).any() and high[a] == shape[a])
        for a in range(3)
    ):
        warnings.append(
            "The lesion touches the image border; its extent beyond the field of view is unknown."
        )
    return warnings


def segment_tumour_from_seed(
    image: sitk.Image,
    seed: Sequence[float],
    *,
    seed_space: str = "RAS",
    box: Sequence[Sequence[float]] | None = None,
    max_diameter_mm: float = 60.0,
) -> OneClickResult:
    """Segment the enhancing lesion under ``seed`` (a point inside it, in ``seed_space``).

    ``box``: two opposite corners in the seed's space bounding the lesion, or None.
    Raises TumourSegmentationError when no bounded, enhancing lesion is found at the seed.
    """
    around = _neighbourhood(image, seed, seed_space, box, max_diameter_mm)
    found = _grow_at_seed(around)
    if not found.acceptable:
        # Nothing acceptable at the seed: it may lie in the necrotic centre of a rim-enhancing lesion.
        rim = _rim_enhancing_lesion(around)
        if rim is not None and rim.within_bound and rim.compactness >= MIN_COMPACTNESS:
            found = rim
        elif rim is not None and not found.region.any():
            raise TumourSegmentationError(
                "No enhancing lesion at the seed: it lies in non-enhancing tissue (fat, or a necrotic centre "
                "whose enhancing wall is not a bounded mass); click on the enhancing lesion or draw a box."
            )
    if not found.region.any():
        raise TumourSegmentationError(
            "No enhancing lesion at the seed (it lies in non-enhancing tissue such as fat); "
            "click inside the enhancing lesion."
        )
    voxel_ml = float(np.prod(around.spacing_kji)) / 1000.0
    volume_ml = float(found.region.sum()) * voxel_ml
    _refuse_unless_lesion(found, around, volume_ml)
    full = np.zeros(around.shape_kji, np.uint8)
    full[around.crop] = found.region
    mask = sitk.GetImageFromArray(full)
    mask.CopyInformation(image)
    return OneClickResult(mask, volume_ml, _warnings(found, around, box is not None))
