"""One synthetic post-contrast breast DCE-MRI case with its tumour mask and ground truth.

>>> case = generate_phantom(7)  # doctest: +SKIP
>>> case.image.GetSize(), case.biomarkers.er, case.true_probabilities["her2"]  # doctest: +SKIP

The volume is built in index space (``anatomy.py``, ``lesion.py``), then given the requested
spacing, origin and direction, so every physical coordinate (lesion centre, mask) is exact for any
flip or oblique direction. Each component draws from its own random stream derived from the seed,
so changing one latent feature (say the peritumoral oedema) changes only what it renders.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.phantom import anatomy, lesion
from BreastSubtypeLib.phantom import biomarkers as biology
from BreastSubtypeLib.phantom.checks import range_in

REFERENCE_CASE = {"size_ijk": (512, 512, 160), "spacing_mm": (0.7, 0.7, 1.1), "lesion_diameter_mm": 20.0}
MAX_INTENSITY = 4095  # 12-bit scanner range
_STREAMS = ("biology", "layout", "appearance", "placement", "anatomy", "vessels", "noise")


@dataclass
class PhantomCase:
    """A phantom and its truth.

    ``tumour_mask`` is binary (1 in every lesion), as a radiologist's segmentation would be;
    ``lesion_labels`` numbers the lesions (1 the index lesion, the largest; 2 the next).
    ``true_probabilities``: er, pr, her2 are P(positive | imaging), the achievable ceiling;
    ki67_expected and ki67_noise_sd are the mean and SD of Ki-67 (percent) given the imaging.
    """

    image: sitk.Image
    tumour_mask: sitk.Image
    lesion_labels: sitk.Image
    case_id: str
    seed: int
    biomarkers: biology.Biomarkers
    true_probabilities: dict
    lesion_center_lps: tuple[float, float, float]
    lesion_center_ras: tuple[float, float, float]
    lesion_diameter_mm: float
    imaging_features: dict


def generate_phantom(
    seed: int,
    *,
    size_ijk=(128, 128, 48),
    spacing_mm=(0.7, 0.7, 1.5),
    direction=None,
    origin=None,
    lesion_diameter_mm: float | None = None,
    biomarkers: dict | None = None,
    n_lesions: int = 1,
    imaging_features: dict | None = None,
    case_id: str | None = None,
    lesion_range_mm: tuple[float, float] | None = None,
    prevalence: dict | None = None,
) -> PhantomCase:
    """A deterministic phantom: the same arguments give identical arrays.

    ``direction`` is a row-major 3x3 tuple (identity by default); ``origin`` defaults to centring
    the volume on (0, 0, 0) mm. ``biomarkers`` (er, pr, her2, ki67_percent, pr_percent; any subset)
    fixes labels and draws imaging features consistent with them; ``imaging_features`` pins latent
    features by name (see ``biomarkers.LATENT_FEATURES``). Lesion diameters are sampled in 8-35 mm
    (shrunk to fit a small field of view) unless ``lesion_diameter_mm`` is given. With
    ``lesion_range_mm`` = (lo, hi) they are sampled in that range (see ``lesion.py``) and never
    shrunk: the matrix grows instead (same spacing, centred) until the lesion and its peritumoral
    band fit. ``prevalence`` ({"er": 0.45, ...}) sets the label model's base rates
    (``biomarkers.check_prevalence``); ``true_probabilities`` are those of that model.
    """
    centred = origin is None
    size_ijk, spacing_mm, direction, origin = check_geometry(size_ijk, spacing_mm, direction, origin)
    wanted = _check_biomarkers(biomarkers)
    fixed = _check_features(imaging_features)
    prevalence = biology.check_prevalence(prevalence)
    if int(n_lesions) != n_lesions or not 1 <= n_lesions <= 2:
        raise BadInputError(f"n_lesions must be 1 or 2, got {n_lesions}.")
    if lesion_diameter_mm is not None and not 3.0 <= float(lesion_diameter_mm) <= 60.0:
        raise BadInputError(f"lesion_diameter_mm must be between 3 and 60 mm, got {lesion_diameter_mm}.")
    if lesion_range_mm is not None:
        lesion_range_mm = range_in(lesion_range_mm, "the lesion diameter range in mm", 3.0, 60.0)
        if lesion_diameter_mm is not None:
            raise BadInputError("give either lesion_diameter_mm or lesion_range_mm, not both.")
    streams = [
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS) + n_lesions)
    ]
    rngs = dict(zip(_STREAMS, streams))
    lesion_rngs = streams[len(_STREAMS) :]

    # Biology: latent imaging features, then labels from them (or features given the labels).
    if wanted:
        latents = biology.sample_latents_given(rngs["biology"], wanted, fixed, prevalence)
    else:
        latents = {k: float(v[0]) for k, v in biology.sample_latents(rngs["biology"], 1).items()}
        latents.update(fixed)
    z = {k: np.array([v]) for k, v in latents.items()}
    labels = biology.sample_labels(rngs["biology"], z, wanted, prevalence)
    labels = biology.Biomarkers(
        er=int(labels["er"][0]),
        pr=int(labels["pr"][0]),
        her2=int(labels["her2"][0]),
        ki67_percent=float(labels["ki67_percent"][0]),
        pr_percent=float(labels["pr_percent"][0]),
    )
    model = biology.label_model(latents, prevalence)
    truth = {key: float(model[key]) for key in ("er", "pr", "her2", "ki67_expected", "ki67_noise_sd")}

    def place(layout, appearance, **how):
        return _place_lesions(layout, appearance, n_lesions, rngs["placement"], lesion_rngs, **how)

    if lesion_range_mm is None:
        layout = anatomy.sample_layout(rngs["layout"], size_ijk, spacing_mm)
        appearance = lesion.appearance_from_latents(latents, rngs["appearance"], lesion_diameter_mm)
        placed = place(layout, appearance, shrink_allowed=lesion_diameter_mm is None)
    else:
        appearance = lesion.appearance_from_latents(latents, rngs["appearance"], None, lesion_range_mm)
        layout, placed = _grow_to_fit(size_ijk, spacing_mm, appearance, rngs["layout"], place)
        if layout.size_ijk != size_ijk:
            size_ijk = layout.size_ijk
            origin = check_geometry(size_ijk, spacing_mm, direction, None if centred else origin)[3]

    image, tissue = anatomy.render_anatomy(layout, rngs["anatomy"])
    keep_out = [(centre_mm, shape.radius_max_mm + lesion.PERITUMORAL_EXTENT_MM + 2.0)
                for _, shape, _, centre_mm in placed]  # fmt: skip
    anatomy.paint_vessels(image, tissue, layout, rngs["vessels"], keep_out)
    lesion_array = np.zeros(image.shape, np.uint8)
    pasted = []
    for number, ((current, shape, centre_kji, _), rng) in enumerate(zip(placed, lesion_rngs), start=1):
        image_box, box = lesion.paste_slices(centre_kji, shape.centre_offset, shape.mask.shape, image.shape)
        lesion_array[image_box][shape.mask[box] & (tissue[image_box] != anatomy.AIR)] = number
        pasted.append((image_box, box, lesion.render_signal(current, shape.mask, spacing_mm, rng)))
    for image_box, box, signal in pasted:  # peritumoral band: on tissue, never on air or another lesion
        on_tissue = (tissue[image_box] != anatomy.AIR) & (lesion_array[image_box] == 0)
        image[image_box] += np.where(on_tissue, signal.peritumoral[box], 0.0)
    for number, (image_box, box, signal) in enumerate(pasted, start=1):
        image[image_box] = np.where(
            lesion_array[image_box] == number, signal.intensity[box], image[image_box]
        )
    del tissue

    nuisance = _finish(image, layout, rngs["noise"])
    voxels = _to_image(image, spacing_mm, origin, direction)
    del image
    tumour_mask = _to_image((lesion_array > 0).astype(np.uint8), spacing_mm, origin, direction)
    lesion_labels = _to_image(lesion_array, spacing_mm, origin, direction)

    centre_lps = voxels.TransformContinuousIndexToPhysicalPoint([float(c) for c in placed[0][2][::-1]])
    features = {
        **latents,
        **placed[0][0].as_dict(),
        **nuisance,
        "fgt_density": layout.fgt_density,
        "bpe_level": layout.bpe_level,
    }
    return PhantomCase(
        image=voxels,
        tumour_mask=tumour_mask,
        lesion_labels=lesion_labels,
        case_id=case_id or f"phantom_{seed}",
        seed=int(seed),
        biomarkers=labels,
        true_probabilities=truth,
        lesion_center_lps=tuple(centre_lps),
        lesion_center_ras=(-centre_lps[0], -centre_lps[1], centre_lps[2]),
        lesion_diameter_mm=placed[0][0].diameter_mm,
        imaging_features=features,
    )


def _fitting_size(size_ijk, spacing_mm, appearance) -> tuple[int, int, int]:
    """The matrix, same spacing, whose field of view holds this lesion with its peritumoral band.

    The lesion (up to ``max_extent_mm`` from its centre with lobes and spicules, usually much less)
    must lie inside a breast and in front of the chest wall; 1.8 diameters plus the bands on every
    axis lets ``_find_centre`` succeed for nearly every lesion (``_grow_to_fit`` grows the rest).
    """
    need_mm = 1.8 * appearance.diameter_mm + 2 * lesion.PERITUMORAL_EXTENT_MM + 4.0
    return tuple(max(n, math.ceil(need_mm / s)) for n, s in zip(size_ijk, spacing_mm))


def _grow_to_fit(size_ijk, spacing_mm, appearance, layout_rng, place):
    """Layout and placed lesions, on a matrix grown (never shrunk) until the lesions fit."""
    size = _fitting_size(size_ijk, spacing_mm, appearance)
    while max(size) <= 1024:
        layout = anatomy.sample_layout(layout_rng, size, spacing_mm)
        try:
            return layout, place(layout, appearance, shrink_allowed=False, band_inside=True)
        except BadInputError:
            size = tuple(math.ceil(1.25 * n) for n in size)
    raise BadInputError(
        f"a {appearance.diameter_mm:.0f} mm lesion does not fit in a 1024-voxel matrix at "
        f"{' x '.join(f'{s:g}' for s in spacing_mm)} mm; use a coarser spacing."
    )


def _place_lesions(layout, appearance, n_lesions, rng, lesion_rngs, *, shrink_allowed, band_inside=None):
    """(appearance, shape, centre voxel (k, j, i), centre mm (x, y, z)) of each lesion.

    Centres lie inside a breast, in front of the chest wall; every tumour voxel stays at least one
    voxel inside the image; lesions are apart by more than their peritumoral bands. A sampled
    diameter shrinks until the lesion and its peritumoral band fit a small field of view; a given
    one that cannot fit is an error. ``band_inside`` (default: ``shrink_allowed``) keeps the
    peritumoral band inside the image too.
    """
    band_inside = shrink_allowed if band_inside is None else band_inside
    for _ in range(12):
        appearances = [appearance]
        if n_lesions == 2:
            small = appearance.diameter_mm * rng.uniform(0.4, 0.7)
            appearances.append(dataclasses.replace(appearance, diameter_mm=small))
        placed = []
        for current, lesion_rng in zip(appearances, lesion_rngs):
            for _ in range(4):  # another shape if this one's spicules cannot fit anywhere
                shape = lesion.render_shape(current, layout.spacing_mm, lesion_rng)
                centre = _find_centre(layout, current, shape, placed, rng, band_inside=band_inside)
                if centre is not None:
                    placed.append((current, shape, *centre))
                    break
            else:
                break
        if len(placed) == n_lesions:
            return placed
        if not shrink_allowed or appearance.diameter_mm < 9.0:
            break
        appearance = dataclasses.replace(appearance, diameter_mm=max(8.0, 0.85 * appearance.diameter_mm))
    fov = " x ".join(f"{f:.0f}" for f in layout.fov_mm)
    raise BadInputError(
        f"{n_lesions} lesion(s) of {appearance.diameter_mm:.0f} mm do not fit in a {fov} mm phantom; "
        "use a larger size or smaller lesions."
    )


def _find_centre(layout, current, shape, placed, rng, *, band_inside: bool, tries: int = 300):
    radius = current.diameter_mm / 2
    spacing = np.asarray(layout.spacing_mm)
    size_kji = np.asarray(layout.size_ijk)[::-1]
    # A sampled lesion keeps its peritumoral band inside the image too; a given one only itself.
    band = np.ceil(lesion.PERITUMORAL_EXTENT_MM / spacing[::-1]).astype(int) if band_inside else 0
    for _ in range(tries):
        breast = layout.breasts[int(rng.integers(len(layout.breasts)))]
        point = np.asarray(breast.centre_mm) + np.asarray(breast.semi_axes_mm) * rng.uniform(-1, 1, 3)
        centre_kji = np.rint(point / spacing).astype(int)[::-1]
        point = centre_kji[::-1] * spacing  # lesions sit on a voxel: their shape does not depend on where
        before = np.array([e[0] for e in shape.extent_voxels]) + band
        after = np.array([e[1] for e in shape.extent_voxels]) + band
        if np.any(centre_kji - before < 1) or np.any(centre_kji + after > size_kji - 2):
            continue
        if not breast.inner_contains(point, 0.8 * radius + anatomy.SKIN_MM + 1.0):
            continue
        if layout.chest_surface_y(point[0]) - point[1] < 0.8 * radius + 2.0:
            continue
        if any(
            np.linalg.norm(point - np.asarray(other_mm))
            < shape.radius_max_mm + other.radius_max_mm + 2 * lesion.PERITUMORAL_EXTENT_MM
            for _, other, _, other_mm in placed
        ):
            continue
        return tuple(int(v) for v in centre_kji), tuple(float(v) for v in point)
    return None


def _finish(image: np.ndarray, layout, rng) -> dict:
    """Global gain, smooth multiplicative bias field and Rician noise; in place, slab by slab."""
    gain = float(math.exp(0.1 * rng.standard_normal()))
    noise_sd = float(rng.uniform(12.0, 30.0))
    slope, curve = rng.uniform(-0.15, 0.15, 3), rng.uniform(-0.1, 0.1, 3)
    profiles = []
    for n, a, b in zip(layout.size_ijk, slope, curve):
        u = np.linspace(-1.0, 1.0, n, dtype=np.float32)
        profiles.append(np.exp(a * u + b * u * u).astype(np.float32))
    bias_yx = profiles[1][:, None] * profiles[0][None, :] * gain
    for k0 in range(0, image.shape[0], anatomy.SLAB):
        k1 = min(k0 + anatomy.SLAB, image.shape[0])
        signal = image[k0:k1] * bias_yx[None] * profiles[2][k0:k1, None, None]
        real = signal + noise_sd * rng.standard_normal(signal.shape, dtype=np.float32)
        imaginary = noise_sd * rng.standard_normal(signal.shape, dtype=np.float32)
        image[k0:k1] = np.clip(np.rint(np.sqrt(real * real + imaginary * imaginary)), 0, MAX_INTENSITY)
    return {"gain": gain, "noise_sd": noise_sd}


def _to_image(array: np.ndarray, spacing_mm, origin, direction) -> sitk.Image:
    if array.dtype == np.float32:
        array = array.astype(np.int16)
    result = sitk.GetImageFromArray(array)
    result.SetSpacing(spacing_mm)
    result.SetOrigin(origin)
    result.SetDirection(direction)
    return result


def check_geometry(size_ijk, spacing_mm, direction, origin):
    try:
        size = tuple(int(v) for v in size_ijk)
        spacing = tuple(float(v) for v in spacing_mm)
    except (TypeError, ValueError):
        raise BadInputError(
            f"size_ijk and spacing_mm must be three numbers each, got {size_ijk} and {spacing_mm}."
        ) from None
    if len(size) != 3 or min(size) < 24 or max(size) > 1024:
        raise BadInputError(f"size_ijk must be three voxel counts between 24 and 1024, got {size_ijk}.")
    if len(spacing) != 3 or not all(math.isfinite(s) and 0.1 <= s <= 10.0 for s in spacing):
        raise BadInputError(f"spacing_mm must be three spacings between 0.1 and 10 mm, got {spacing_mm}.")
    matrix = np.eye(3) if direction is None else np.asarray(direction, float).reshape(-1)
    if matrix.size != 9 or not np.allclose(
        matrix.reshape(3, 3) @ matrix.reshape(3, 3).T, np.eye(3), atol=1e-4
    ):
        raise BadInputError(f"direction must be a row-major orthonormal 3x3 matrix, got {direction}.")
    matrix = matrix.reshape(3, 3)
    if origin is None:  # centre the volume on (0, 0, 0) mm
        origin = -matrix @ (np.asarray(spacing) * (np.asarray(size) - 1) / 2)
    origin = tuple(float(v) for v in origin)
    if len(origin) != 3 or not all(math.isfinite(v) for v in origin):
        raise BadInputError(f"origin must be three finite millimetre coordinates, got {origin}.")
    return size, spacing, tuple(matrix.reshape(-1).tolist()), origin


def _check_biomarkers(given):
    if not given:
        return {}
    if isinstance(given, biology.Biomarkers):
        given = given.as_dict()
    allowed = {"er", "pr", "her2", "ki67_percent", "pr_percent"}
    unknown = set(given) - allowed
    if unknown:
        raise BadInputError(f"unknown biomarkers {sorted(unknown)}; expected some of {sorted(allowed)}.")
    for key in ("er", "pr", "her2"):
        if given.get(key) not in (None, 0, 1):
            raise BadInputError(f"biomarker {key} must be 0 or 1, got {given[key]}.")
    for key in ("ki67_percent", "pr_percent"):
        if given.get(key) is not None and not 0.0 <= float(given[key]) <= 100.0:
            raise BadInputError(f"biomarker {key} must be between 0 and 100, got {given[key]}.")
    return {k: v for k, v in given.items() if v is not None}


def _check_features(features):
    features = dict(features or {})
    unknown = set(features) - set(biology.LATENT_FEATURES)
    if unknown:
        raise BadInputError(
            f"unknown imaging features {sorted(unknown)}; expected some of {list(biology.LATENT_FEATURES)}."
        )
    return {k: float(v) for k, v in features.items()}
