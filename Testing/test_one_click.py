"""One-click tumour on phantoms: close to the truth from a click at the centre, bounded or refused elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from BreastSubtypeLib.errors import TumourSegmentationError
from BreastSubtypeLib.phantom import generate_phantom
from BreastSubtypeLib.rois.one_click import segment_tumour_from_seed

OBLIQUE = (0.866, -0.5, 0.0, 0.5, 0.866, 0.0, 0.0, 0.0, 1.0)
FLIPPED = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
CASES = [(seed, {}) for seed in range(8)] + [
    (8, {"direction": FLIPPED}),
    (9, {"direction": OBLIQUE}),
    (10, {"spacing_mm": (0.6, 0.6, 2.0)}),
    (11, {"direction": OBLIQUE, "spacing_mm": (0.8, 0.8, 1.2)}),
]
# Strong rim enhancement around a large necrotic centre (the triple-negative look): a click at the
# lesion centre lands in the dark necrosis. Phantom 0 also flipped, and oblique with thick slices.
NECROTIC = [
    (0, {}),
    (14, {}),
    (19, {}),
    (33, {}),
    (0, {"direction": FLIPPED}),
    (0, {"direction": OBLIQUE, "spacing_mm": (0.8, 0.8, 2.0)}),
]


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _click_at_centres(cases):
    results = []
    for seed, geometry in cases:
        case = generate_phantom(seed, **geometry)
        truth = sitk.GetArrayFromImage(case.lesion_labels) == 1
        found = segment_tumour_from_seed(case.image, case.lesion_center_ras, seed_space="RAS")
        results.append((case, truth, found))
    return results


@pytest.fixture(scope="module")
def clicks():
    return _click_at_centres(CASES)


@pytest.fixture(scope="module")
def necrotic_clicks():
    return _click_at_centres(NECROTIC)


def test_click_at_the_centre_finds_the_lesion(clicks):
    dices = [_dice(sitk.GetArrayViewFromImage(found.mask) > 0, truth) for _, truth, found in clicks]
    assert min(dices) >= 0.85, dices
    assert np.median(dices) >= 0.9, dices


def test_click_in_the_necrotic_centre_of_a_rim_enhancing_lesion(necrotic_clicks):
    for case, truth, found in necrotic_clicks:
        features = case.imaging_features
        assert features["rim_enhancement"] > 1.3 and features["necrosis_fraction"] > 0.4, case.case_id
        # The click really lands in the dark centre: well below the lesion's own signal.
        seed_index = case.image.TransformPhysicalPointToIndex(case.lesion_center_lps)
        values = sitk.GetArrayViewFromImage(case.image)
        assert values[seed_index[::-1]] < 0.4 * np.median(values[truth]), case.case_id
        assert _dice(sitk.GetArrayViewFromImage(found.mask) > 0, truth) >= 0.85, case.case_id
        assert any("non-enhancing centre" in w for w in found.warnings), found.warnings


def test_result_is_on_the_input_grid_and_bounded(clicks, necrotic_clicks):
    for case, truth, found in clicks + necrotic_clicks:
        mask = found.mask
        assert (mask.GetSize(), mask.GetOrigin(), mask.GetDirection()) == (
            case.image.GetSize(),
            case.image.GetOrigin(),
            case.image.GetDirection(),
        )
        voxel_ml = np.prod(case.image.GetSpacing()) / 1000
        assert found.volume_ml == pytest.approx(sitk.GetArrayViewFromImage(mask).sum() * voxel_ml)
        assert found.volume_ml < 4 * truth.sum() * voxel_ml  # never the whole breast


def test_lps_seed_and_a_box_give_the_same_lesion(clicks):
    case, truth, found = clicks[1]
    lps = segment_tumour_from_seed(case.image, case.lesion_center_lps, seed_space="LPS")
    assert np.array_equal(sitk.GetArrayViewFromImage(lps.mask), sitk.GetArrayViewFromImage(found.mask))
    half = case.lesion_diameter_mm
    centre = np.asarray(case.lesion_center_ras)
    boxed = segment_tumour_from_seed(case.image, centre, box=(centre - half, centre + half))
    assert _dice(sitk.GetArrayViewFromImage(boxed.mask) > 0, truth) >= 0.85
    # The same box given in LPS with an LPS seed: the same voxels.
    centre_lps = np.asarray(case.lesion_center_lps)
    box_lps = (centre_lps - half, centre_lps + half)
    boxed_lps = segment_tumour_from_seed(case.image, centre_lps, seed_space="LPS", box=box_lps)
    assert np.array_equal(sitk.GetArrayViewFromImage(boxed_lps.mask), sitk.GetArrayViewFromImage(boxed.mask))


def test_box_around_a_necrotic_lesion(necrotic_clicks):
    case, truth, _ = necrotic_clicks[0]
    centre = np.asarray(case.lesion_center_ras)
    half = case.lesion_diameter_mm
    boxed = segment_tumour_from_seed(case.image, centre, box=(centre - half, centre + half))
    assert _dice(sitk.GetArrayViewFromImage(boxed.mask) > 0, truth) >= 0.85


def _far_point(case, low, high, min_distance_mm=15.0):
    """An LPS voxel centre with intensity in [low, high] (smoothed), far from the lesion."""
    values = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(case.image, 1.0))
    k, j, i = np.nonzero((values >= low) & (values <= high))
    order = np.random.default_rng(0).permutation(k.size)
    centre = np.asarray(case.lesion_center_lps)
    for n in order:
        point = np.asarray(case.image.TransformIndexToPhysicalPoint((int(i[n]), int(j[n]), int(k[n]))))
        if np.linalg.norm(point - centre) > min_distance_mm:
            return tuple(point)
    raise AssertionError("no such voxel")


@pytest.mark.parametrize(
    "seed, low, high",
    [(3, 150, 300), (0, 150, 300), (14, 150, 300), (0, 1500, 5000)],
    ids=["fat", "fat-beside-necrotic-lesion", "fat-beside-necrotic-lesion-2", "vessel"],
)
def test_click_in_fat_or_a_vessel_is_refused_or_small(seed, low, high):
    case = generate_phantom(seed)
    point = _far_point(case, low, high)
    try:
        found = segment_tumour_from_seed(case.image, point, seed_space="LPS")
    except TumourSegmentationError as exc:
        assert "seed" in str(exc) or "bound" in str(exc)
        return
    assert found.volume_ml < 5.0


def test_seed_outside_the_image_or_in_air_is_refused():
    case = generate_phantom(1)
    with pytest.raises(TumourSegmentationError, match="outside the image"):
        segment_tumour_from_seed(case.image, (900.0, 0.0, 0.0))
    air = case.image.TransformIndexToPhysicalPoint((2, 2, 2))
    values = sitk.GetArrayViewFromImage(case.image)
    assert values[2, 2, 2] < 100  # the phantom's corner is air
    with pytest.raises(TumourSegmentationError, match="air"):
        segment_tumour_from_seed(case.image, air, seed_space="LPS")


def _hollow_sphere(synth, spacing, direction, plate_only=False):
    """Tissue (400) with a 10 mm sphere whose enhancing wall (1800, open at two 5 mm gaps) surrounds a
    dark 7 mm centre (250), or, with ``plate_only``, just an enhancing plate 4 mm thick beside dark tissue."""
    size = (64, 64, 32)
    origin = synth.centred_origin(size, spacing, direction)
    reference = synth.image_from_array(np.zeros(size[::-1], np.uint8), spacing, origin, direction)
    radius = np.linalg.norm(synth.physical_points(reference), axis=-1)
    values = np.full(radius.shape, 400.0)
    if plate_only:
        values[:] = 250.0
        x = synth.physical_points(reference)[..., 0]
        values[(x > 6.0) & (x < 10.0)] = 1800.0
    else:
        values[radius <= 10.0] = 1800.0
        values[radius <= 7.0] = 250.0
        # Two 5 mm gaps in the wall (left and right), so the centre is not a closed hole.
        x, y, z = np.moveaxis(synth.physical_points(reference), -1, 0)
        values[(np.hypot(y, z) < 2.5) & (radius <= 10.0)] = 250.0
    values += np.random.default_rng(3).normal(0, 15, values.shape)
    return synth.image_from_array(values.astype(np.int16), spacing, origin, direction), radius <= 10.0


@pytest.mark.parametrize(
    "spacing, direction",
    [((0.7, 0.7, 1.5), None), ((0.8, 0.6, 2.0), OBLIQUE)],
    ids=["axial", "oblique-anisotropic"],
)
def test_dark_centre_inside_an_enhancing_wall_is_filled(synth, spacing, direction):
    image, sphere = _hollow_sphere(synth, spacing, direction)
    found = segment_tumour_from_seed(image, (0.0, 0.0, 0.0), seed_space="LPS")
    assert _dice(sitk.GetArrayViewFromImage(found.mask) > 0, sphere) >= 0.95
    assert found.volume_ml == pytest.approx(4 / 3 * np.pi * 10.0**3 / 1000, rel=0.05)
    assert any("non-enhancing centre" in w for w in found.warnings)


def test_dark_tissue_beside_enhancement_but_not_enclosed_is_refused(synth):
    image, _ = _hollow_sphere(synth, (0.7, 0.7, 1.5), None, plate_only=True)
    with pytest.raises(TumourSegmentationError, match="No enhancing lesion at the seed"):
        segment_tumour_from_seed(image, (0.0, 0.0, 0.0), seed_space="LPS")
