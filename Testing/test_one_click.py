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


def _dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def clicks():
    results = []
    for seed, geometry in CASES:
        case = generate_phantom(seed, **geometry)
        truth = sitk.GetArrayFromImage(case.lesion_labels) == 1
        try:
            found = segment_tumour_from_seed(case.image, case.lesion_center_ras, seed_space="RAS")
        except TumourSegmentationError as exc:
            results.append((case, truth, None, str(exc)))
            continue
        results.append((case, truth, found, ""))
    return results


def test_click_at_the_centre_finds_the_lesion(clicks):
    dices = [
        _dice(sitk.GetArrayViewFromImage(found.mask) > 0, truth) if found else 0.0
        for _, truth, found, _ in clicks
    ]
    assert np.median(dices) >= 0.9, dices
    assert np.mean(np.asarray(dices) >= 0.85) >= 0.8, dices


def test_result_is_on_the_input_grid_and_bounded(clicks):
    for case, truth, found, message in clicks:
        if found is None:
            assert "bound" in message or "enhanc" in message
            continue
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
    case, truth, found, _ = clicks[1]
    lps = segment_tumour_from_seed(case.image, case.lesion_center_lps, seed_space="LPS")
    assert np.array_equal(sitk.GetArrayViewFromImage(lps.mask), sitk.GetArrayViewFromImage(found.mask))
    half = case.lesion_diameter_mm
    centre = np.asarray(case.lesion_center_ras)
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


@pytest.mark.parametrize("seed, low, high", [(3, 150, 300), (0, 1500, 5000)], ids=["fat", "vessel"])
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
