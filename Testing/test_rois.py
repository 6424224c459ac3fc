"""Core/rim/peritumoral regions in millimetres, checked against analytic spheres on real-world grids."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.rois import CORE, PERITUMORAL, RIM
from BreastSubtypeLib.rois.regions import compute_rois

CENTRE_MM = (0.6, -0.9, 0.4)  # off the grid's centre so flips and rotations change the voxelisation
GRIDS = {
    "anisotropic": None,
    "flipped": np.diag([-1.0, 1.0, -1.0]),
    "oblique": "oblique",
}


def _sphere(synth, grid, radius_mm=8.0, size=(72, 72, 40)):
    direction = synth.oblique_direction(25) if grid == "oblique" else GRIDS[grid]
    image, mask = synth.ellipsoid_case(
        size=size,
        spacing=(0.7, 0.7, 1.5),
        direction=direction,
        radii_mm=(radius_mm,) * 3,
        centre_mm=CENTRE_MM,
    )
    radius = np.linalg.norm(synth.physical_points(image) - np.asarray(CENTRE_MM), axis=-1)
    return image, mask, radius


def _ball_ml(radius_mm):
    return 4 / 3 * np.pi * radius_mm**3 / 1000


@pytest.mark.parametrize("grid", GRIDS)
def test_shell_volumes_match_the_analytic_sphere(synth, grid):
    image, mask, _ = _sphere(synth, grid)
    result = compute_rois(image, mask, rim_mm=3.0, peri_mm=5.0)
    assert result.rim_mm_used == 3.0 and result.warnings == [] and result.lesion_count == 1
    assert result.volumes_ml["rim"] == pytest.approx(_ball_ml(8) - _ball_ml(5), rel=0.10)
    assert result.volumes_ml["tumour"] == pytest.approx(_ball_ml(8), rel=0.03)
    assert result.volumes_ml["peritumoral"] == pytest.approx(_ball_ml(13) - _ball_ml(8), rel=0.10)
    labels = sitk.GetArrayViewFromImage(result.labelmap)
    voxel_ml = np.prod(image.GetSpacing()) / 1000
    assert result.volumes_ml["rim"] == pytest.approx((labels == RIM).sum() * voxel_ml)


@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("rim_mm, peri_mm", [(3.0, 5.0), (1.0, 2.0)])
def test_every_voxel_agrees_with_its_distance_to_the_sphere(synth, grid, rim_mm, peri_mm):
    image, mask, radius = _sphere(synth, grid)
    labels = sitk.GetArrayFromImage(compute_rois(image, mask, rim_mm, peri_mm).labelmap)
    tumour = sitk.GetArrayViewFromImage(mask).astype(bool)
    half_diagonal = 0.5 * np.linalg.norm(image.GetSpacing())
    depth = 8.0 - radius  # > 0 inside the analytic sphere
    assert depth[labels == RIM].max() <= rim_mm + half_diagonal
    assert depth[labels == CORE].min() >= rim_mm - half_diagonal
    assert (-depth[labels == PERITUMORAL]).max() <= peri_mm + half_diagonal
    unlabelled_outside = (labels == 0) & ~tumour
    assert (-depth[unlabelled_outside]).min() >= peri_mm - half_diagonal


def test_output_keeps_the_input_geometry(synth):
    image, mask, _ = _sphere(synth, "oblique")
    labelmap = compute_rois(image, mask).labelmap
    assert labelmap.GetPixelID() == sitk.sitkUInt8
    assert (labelmap.GetSize(), labelmap.GetSpacing(), labelmap.GetOrigin(), labelmap.GetDirection()) == (
        image.GetSize(),
        image.GetSpacing(),
        image.GetOrigin(),
        image.GetDirection(),
    )


def test_flipped_storage_gives_the_same_physical_rois(synth):
    image, mask, _ = _sphere(synth, "anisotropic")
    # The same voxels stored with i and k reversed: flip the array, negate those axes, move the origin.
    flip = (True, False, True)
    flipped_image, flipped_mask = sitk.Flip(image, flip), sitk.Flip(mask, flip)
    assert flipped_image.GetDirection() != image.GetDirection()
    original = compute_rois(image, mask).labelmap
    flipped = compute_rois(flipped_image, flipped_mask).labelmap
    back = sitk.Resample(flipped, original, sitk.Transform(), sitk.sitkNearestNeighbor)
    assert np.array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(original))


def test_thin_lesion_keeps_its_innermost_voxels_as_core(synth):
    array = np.zeros((20, 40, 40), np.uint8)
    array[4:16, 10:30, 10:13] = 1  # 3 columns of 0.7 mm: 2.1 mm thick, thinner than 2 × 1.5 mm
    image = synth.image_from_array(np.where(array, 900, 300).astype(np.int16), (0.7, 0.7, 1.5))
    mask = synth.image_from_array(array, (0.7, 0.7, 1.5))
    result = compute_rois(image, mask, rim_mm=1.5)
    labels = sitk.GetArrayViewFromImage(result.labelmap)
    assert 0 < result.rim_mm_used < 1.5
    assert any("narrowed" in w for w in result.warnings)
    assert (labels[6:14, 12:28, 11] == CORE).all()  # the middle column, away from the other walls
    assert (labels[:, :, 10] == RIM).sum() == (array[:, :, 10] == 1).sum()
    assert (labels[:, :, 12] == RIM).sum() == (array[:, :, 12] == 1).sum()


def test_one_voxel_lesion_is_all_core_with_a_warning(synth):
    array = np.zeros((12, 20, 20), np.uint8)
    array[6, 10, 10] = 1
    image = synth.image_from_array(np.where(array, 900, 300).astype(np.int16), (0.7, 0.7, 1.5))
    result = compute_rois(image, synth.image_from_array(array, (0.7, 0.7, 1.5)), rim_mm=3.0, peri_mm=1.0)
    labels = sitk.GetArrayViewFromImage(result.labelmap)
    assert labels[6, 10, 10] == CORE and (labels == CORE).sum() == 1 and (labels == RIM).sum() == 0
    assert result.rim_mm_used == 0.0
    # 1 mm around a 0.7 × 0.7 × 1.5 mm voxel: its in-plane neighbours (8, within 0.35 + 0.99 mm) only.
    assert np.array_equal(np.argwhere(labels == PERITUMORAL)[:, 0], np.full(8, 6))
    assert any("only 1 voxels" in w for w in result.warnings)


def test_lesion_touching_the_border_has_no_rim_along_the_border(synth):
    array = np.zeros((16, 30, 30), np.uint8)
    array[4:12, 0:10, 8:20] = 1  # cut by the j = 0 face
    image = synth.image_from_array(np.where(array, 900, 300).astype(np.int16), (0.7, 0.7, 1.5))
    result = compute_rois(image, synth.image_from_array(array, (0.7, 0.7, 1.5)), rim_mm=1.0, peri_mm=2.0)
    labels = sitk.GetArrayViewFromImage(result.labelmap)
    assert (labels[6:10, 0, 11:17] == CORE).all()
    assert (labels[6:10, 9, 11:17] == RIM).all()  # the inner face still has its rim
    assert any("border" in w for w in result.warnings)


def _two_lesions(synth):
    array = np.zeros((24, 48, 64), np.uint8)
    zz, yy, xx = np.mgrid[:24, :48, :64]
    big = ((xx - 20) * 0.7) ** 2 + ((yy - 24) * 0.7) ** 2 + ((zz - 12) * 1.5) ** 2 <= 6.0**2
    small = ((xx - 46) * 0.7) ** 2 + ((yy - 24) * 0.7) ** 2 + ((zz - 12) * 1.5) ** 2 <= 4.0**2
    array[big] = 1
    array[small] = 1
    image = synth.image_from_array(np.where(array, 900, 300).astype(np.int16), (0.7, 0.7, 1.5))
    return image, synth.image_from_array(array, (0.7, 0.7, 1.5)), big, small


def test_index_lesion_band_stops_short_of_another_lesion(synth):
    image, mask, big, small = _two_lesions(synth)
    result = compute_rois(image, mask, rim_mm=2.0, peri_mm=5.0)
    labels = sitk.GetArrayViewFromImage(result.labelmap)
    assert result.lesion_count == 2 and any("2 separate lesions" in w for w in result.warnings)
    assert np.array_equal(labels[big] > 0, np.ones(big.sum(), bool)) and (labels[small] == 0).all()
    # Gap between the surfaces: (46 - 20) × 0.7 - 10 = 8.2 mm < 2 × 5 mm: the band stops where the
    # small lesion's own 5 mm band begins, i.e. no band voxel beyond x = 46 - (4 + 5) / 0.7 ≈ 33.1 (± the
    # half-voxel of the boundary estimate).
    band_x = np.argwhere(labels == PERITUMORAL)[:, 2]
    assert 31 <= band_x.max() <= 34
    both = compute_rois(image, mask, rim_mm=2.0, peri_mm=5.0, lesion="all")
    assert (sitk.GetArrayViewFromImage(both.labelmap)[small] > 0).all()
    assert both.volumes_ml["tumour"] > result.volumes_ml["tumour"]
    second = compute_rois(image, mask, lesion=2)
    assert second.volumes_ml["tumour"] == pytest.approx(small.sum() * 0.7 * 0.7 * 1.5 / 1000)


def test_peritumoral_band_stays_out_of_air(synth):
    rng = np.random.default_rng(5)
    values = rng.normal(400, 20, (24, 48, 48))
    values[:, :, :24] = np.abs(rng.normal(0, 15, (24, 48, 24)))  # air: noise around zero, x < 24
    array = np.zeros((24, 48, 48), np.uint8)
    zz, yy, xx = np.mgrid[:24, :48, :48]
    array[((xx - 30) * 0.7) ** 2 + ((yy - 24) * 0.7) ** 2 + ((zz - 12) * 1.5) ** 2 <= 4.0**2] = 1
    values[array == 1] = 1000
    image = synth.image_from_array(values.astype(np.int16), (0.7, 0.7, 1.5))
    result = compute_rois(image, synth.image_from_array(array, (0.7, 0.7, 1.5)), peri_mm=5.0)
    labels = sitk.GetArrayViewFromImage(result.labelmap)
    band_x = np.argwhere(labels == PERITUMORAL)[:, 2]
    assert band_x.min() == 24  # reaches the air boundary (4 + 5 mm from x = 30 is x ≈ 17) and stops
    assert 20 < result.tissue_threshold < 200  # between air noise and tissue


def test_mask_on_a_cropped_grid_gives_the_same_rois(synth):
    image, mask, _ = _sphere(synth, "oblique")
    cropped = mask[20:52, 18:50, 10:30]
    same = compute_rois(image, mask).labelmap
    other = compute_rois(image, cropped).labelmap
    assert np.array_equal(sitk.GetArrayViewFromImage(same), sitk.GetArrayViewFromImage(other))


@pytest.mark.parametrize("rim_mm, peri_mm", [(-1.0, 5.0), (3.0, 0.0), (3.0, 80.0), (float("nan"), 5.0)])
def test_bad_widths_are_refused(synth, rim_mm, peri_mm):
    image, mask, _ = _sphere(synth, "anisotropic", size=(40, 40, 20), radius_mm=4)
    with pytest.raises(BadInputError, match="width"):
        compute_rois(image, mask, rim_mm, peri_mm)


@pytest.mark.parametrize(("scale", "offset"), [(1.0, -400.0), (0.01, -3.0), (37.5, -9000.0)])
def test_a_negative_storage_offset_gives_the_same_rois(synth, scale, offset):
    """Float images stored as b·v + a with a < 0 (a rescale intercept, another site's scaling): MR
    magnitude is never negative, so the offset is seen and the air/tissue split does not move."""
    rng = np.random.default_rng(5)
    values = rng.normal(400, 20, (24, 48, 48))
    values[:, :, :20] = np.abs(rng.normal(0, 15, (24, 48, 20)))  # air: noise around zero, x < 20
    values[:, :, 20:24] = rng.normal(150, 10, (24, 48, 4))  # dark fat in the band, beside the air
    array = np.zeros((24, 48, 48), np.uint8)
    zz, yy, xx = np.mgrid[:24, :48, :48]
    array[((xx - 30) * 0.7) ** 2 + ((yy - 24) * 0.7) ** 2 + ((zz - 12) * 1.5) ** 2 <= 4.0**2] = 1
    values[array == 1] = 1000
    mask = synth.image_from_array(array, (0.7, 0.7, 1.5))
    stored = compute_rois(synth.image_from_array(values.astype(np.float32), (0.7, 0.7, 1.5)), mask)
    rescaled = compute_rois(
        synth.image_from_array((values * scale + offset).astype(np.float32), (0.7, 0.7, 1.5)), mask
    )
    labels = sitk.GetArrayViewFromImage(stored.labelmap)
    assert np.argwhere(labels == PERITUMORAL)[:, 2].min() == 20  # the fat is band, the air is not
    assert np.array_equal(labels, sitk.GetArrayViewFromImage(rescaled.labelmap))
