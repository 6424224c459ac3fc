"""THE preprocessing: lesion-centred crop in physical space, normalisation, maps back onto the input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.model.config import SCALAR_FEATURES, SIZE_FEATURES, PreprocessingConfig
from BreastSubtypeLib.preprocessing.crop import (
    crop_map_to_input_grid,
    prepare_model_input,
    stack_model_inputs,
)

SIZE_IJK = (72, 64, 40)
SPACING = (0.7, 0.7, 1.1)
ORIGIN = (-20.0, 15.0, -7.5)
CONFIG = PreprocessingConfig(crop_size_voxels=(48, 48, 48), target_spacing_mm=0.8)


def make_case(centre_ijk=(40.0, 30.0, 20.0), radius_mm=6.0, seed=0):
    """Noisy background, a bright sphere (core inside 3 mm, rim) and a 4 mm peritumoral shell."""
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*[np.arange(n) for n in reversed(SIZE_IJK)], indexing="ij")
    distance = np.sqrt(
        ((i - centre_ijk[0]) * SPACING[0]) ** 2
        + ((j - centre_ijk[1]) * SPACING[1]) ** 2
        + ((k - centre_ijk[2]) * SPACING[2]) ** 2
    )
    pixels = rng.normal(300, 40, distance.shape) + 900 * (distance < radius_mm)
    labels = np.zeros(distance.shape, np.uint8)
    labels[distance < radius_mm + 4] = 3
    labels[distance < radius_mm] = 2
    labels[distance < radius_mm - 3] = 1
    return to_image(pixels.astype(np.int16)), to_image(labels)


def to_image(array, direction=None, origin=ORIGIN, spacing=SPACING):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(direction)
    return image


def flipped(image, axis):
    """The same physical content stored with sitk axis ``axis`` reversed."""
    array = np.flip(sitk.GetArrayFromImage(image), axis=2 - axis).copy()
    direction = np.array(image.GetDirection()).reshape(3, 3)
    last = [0, 0, 0]
    last[axis] = image.GetSize()[axis] - 1
    origin = image.TransformIndexToPhysicalPoint(last)
    direction[:, axis] *= -1
    return to_image(array, direction.flatten().tolist(), origin, image.GetSpacing())


def physical_points(image):
    """(N, 3) LPS points of every voxel, in array order [k, j, i]."""
    size = image.GetSize()
    k, j, i = np.meshgrid(*[np.arange(n) for n in reversed(size)], indexing="ij")
    index = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1).astype(float)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    return np.asarray(image.GetOrigin()) + (index * image.GetSpacing()) @ direction.T


def continuous_index(image, points):
    direction = np.array(image.GetDirection()).reshape(3, 3)
    return ((points - image.GetOrigin()) @ direction) / image.GetSpacing()


def test_crop_is_centred_on_the_lesion_in_physical_space():
    image, labels = make_case(centre_ijk=(40.0, 30.0, 20.0))
    model_input = prepare_model_input(image, labels, CONFIG)
    reference = model_input.crop_reference
    centre = reference.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in reference.GetSize()])
    expected = image.TransformContinuousIndexToPhysicalPoint([40.0, 30.0, 20.0])
    np.testing.assert_allclose(centre, expected, atol=1e-9)
    assert reference.GetSize() == (48, 48, 48)
    assert reference.GetSpacing() == (CONFIG.target_spacing_mm,) * 3
    assert model_input.array.shape == (4, 48, 48, 48) and model_input.array.dtype == np.float32


def test_masks_in_the_crop_land_where_the_physical_roi_is():
    image, labels = make_case()
    model_input = prepare_model_input(image, labels, CONFIG)
    points = physical_points(model_input.crop_reference)
    nearest = np.rint(continuous_index(image, points)).astype(int)  # (i, j, k)
    expected = sitk.GetArrayViewFromImage(labels)[nearest[:, 2], nearest[:, 1], nearest[:, 0]]
    got = np.argmax(np.concatenate([np.full((1, 48, 48, 48), 0.5), model_input.array[1:]]), axis=0).ravel()
    assert np.array_equal(got, expected)
    assert model_input.array[1:].sum(axis=0).max() == 1.0  # one-hot


def test_flipped_and_permuted_storage_of_the_same_anatomy_gives_the_same_crop():
    image, labels = make_case()
    reference = prepare_model_input(image, labels, CONFIG)
    for axis in (0, 2):
        other = prepare_model_input(flipped(image, axis), flipped(labels, axis), CONFIG)
        np.testing.assert_allclose(other.array, reference.array, atol=1e-5)
        np.testing.assert_allclose(other.scalars, reference.scalars, rtol=1e-5, atol=1e-6)  # size, profile
        np.testing.assert_allclose(
            other.crop_reference.GetOrigin(), reference.crop_reference.GetOrigin(), atol=1e-9
        )
        np.testing.assert_allclose(other.crop_reference.GetDirection(), np.eye(3).ravel(), atol=1e-12)


def test_an_oblique_direction_gives_the_same_crop_content_on_rotated_axes():
    image, labels = make_case()
    angle = math.radians(20)
    rotation = [math.cos(angle), -math.sin(angle), 0, math.sin(angle), math.cos(angle), 0, 0, 0, 1]
    oblique = [to_image(sitk.GetArrayFromImage(im), rotation) for im in (image, labels)]
    straight = prepare_model_input(image, labels, CONFIG)
    tilted = prepare_model_input(*oblique, CONFIG)
    np.testing.assert_allclose(tilted.array, straight.array, atol=1e-5)
    np.testing.assert_allclose(tilted.scalars, straight.scalars, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tilted.crop_reference.GetDirection(), rotation, atol=1e-12)


def test_scalars_carry_the_physical_lesion_size():
    image, labels = make_case()
    model_input = prepare_model_input(image, labels, CONFIG)
    tumour_voxels = int(np.isin(sitk.GetArrayViewFromImage(labels), (1, 2)).sum())
    assert model_input.lesion_volume_ml == pytest.approx(tumour_voxels * 0.7 * 0.7 * 1.1 / 1000, rel=1e-12)
    np.testing.assert_allclose(
        model_input.scalars[: len(SIZE_FEATURES)],
        [math.log1p(model_input.lesion_volume_ml), math.log(model_input.crop_spacing_mm)],
        rtol=1e-6,
    )
    assert model_input.scalars.shape == (len(SCALAR_FEATURES),) and np.isfinite(model_input.scalars).all()


def test_field_of_view_grows_with_a_large_lesion_and_keeps_the_whole_roi():
    image, labels = make_case(centre_ijk=(36.0, 32.0, 20.0), radius_mm=12.0)
    model_input = prepare_model_input(image, labels, CONFIG)
    k, j, i = np.nonzero(sitk.GetArrayViewFromImage(labels))
    roi_extent_mm = max((np.ptp(v) + 1) * s for v, s in zip((i, j, k), SPACING))  # whole voxels, in mm
    assert model_input.crop_spacing_mm > CONFIG.target_spacing_mm
    assert model_input.crop_spacing_mm == pytest.approx(1.5 * roi_extent_mm / 48, rel=1e-12)
    roi = model_input.array[1:].sum(axis=0)
    faces = [roi[0], roi[-1], roi[:, 0], roi[:, -1], roi[:, :, 0], roi[:, :, -1]]
    assert roi.sum() > 0 and all(face.sum() == 0 for face in faces)
    small = prepare_model_input(*make_case(radius_mm=5.0), CONFIG)
    assert small.crop_spacing_mm == CONFIG.target_spacing_mm


def test_normalisation_ignores_the_scanner_gain_and_offset():
    image, labels = make_case()
    rescaled = sitk.Cast(image, sitk.sitkFloat32) * 3.0 + 100.0
    a = prepare_model_input(image, labels, CONFIG).array[0]
    b = prepare_model_input(rescaled, labels, CONFIG).array[0]
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert a.min() >= -0.5 and a.max() <= 1.5


def test_a_lesion_near_the_border_gets_zeros_outside_the_image():
    image, labels = make_case(centre_ijk=(8.0, 30.0, 20.0), radius_mm=4.0)
    model_input = prepare_model_input(image, labels, CONFIG)
    points = physical_points(model_input.crop_reference)
    outside = (continuous_index(image, points)[:, 0] < -0.5).reshape(48, 48, 48)
    assert outside.any() and np.isfinite(model_input.array).all()
    assert np.all(model_input.array[0][outside] == 0)


@pytest.mark.parametrize("flip_axis", [None, 0])
def test_a_crop_constant_map_lands_exactly_on_the_crop_region_of_the_input_grid(flip_axis):
    image, labels = make_case()
    if flip_axis is not None:
        image, labels = flipped(image, flip_axis), flipped(labels, flip_axis)
    model_input = prepare_model_input(image, labels, CONFIG)
    mapped = crop_map_to_input_grid(np.full((48, 48, 48), 0.7, np.float32), model_input, image)
    assert mapped.GetSize() == image.GetSize() and mapped.GetPixelID() == sitk.sitkFloat32
    for get in ("GetSpacing", "GetOrigin", "GetDirection"):
        assert getattr(mapped, get)() == getattr(image, get)()
    crop_index = continuous_index(model_input.crop_reference, physical_points(image))
    inside = np.all((crop_index >= -0.5) & (crop_index < 47.5), axis=1)
    on_face = np.any(
        np.isclose(crop_index, -0.5, atol=1e-6) | np.isclose(crop_index, 47.5, atol=1e-6), axis=1
    )
    values = sitk.GetArrayFromImage(mapped).ravel()
    assert not on_face.any()  # the geometry has no voxel on the crop's faces, so the region is exact
    np.testing.assert_allclose(values[inside], 0.7, atol=1e-6)
    assert np.all(values[~inside] == 0)
    assert inside.sum() > 1000


def test_a_crop_map_keeps_its_spatial_pattern_on_the_input_grid():
    image, labels = make_case(centre_ijk=(36.0, 32.0, 20.0), radius_mm=8.0)
    model_input = prepare_model_input(image, labels, CONFIG)
    core_back = sitk.GetArrayViewFromImage(crop_map_to_input_grid(model_input.array[1], model_input, image))
    core = sitk.GetArrayViewFromImage(labels) == 1
    dice = 2 * np.sum((core_back >= 0.5) & core) / (np.sum(core_back >= 0.5) + core.sum())
    assert dice > 0.9


def test_batches_stack_cases():
    one = prepare_model_input(*make_case(seed=1), CONFIG)
    two = prepare_model_input(*make_case(seed=2), CONFIG)
    arrays, scalars = stack_model_inputs([one, two])
    assert arrays.shape == (2, 4, 48, 48, 48) and scalars.shape == (2, len(SCALAR_FEATURES))


def test_bad_labelmaps_are_refused_naming_the_file():
    image, labels = make_case()
    empty = to_image(np.zeros(sitk.GetArrayViewFromImage(labels).shape, np.uint8))
    with pytest.raises(BadInputError, match="empty.*case7.nrrd|case7.nrrd.*empty"):
        prepare_model_input(image, empty, CONFIG, source="case7.nrrd")
    stray = sitk.GetArrayFromImage(labels)
    stray[stray == 2] = 7
    with pytest.raises(BadInputError, match="label 7"):
        prepare_model_input(image, to_image(stray), CONFIG, source="case7.nrrd")
    shifted = to_image(sitk.GetArrayFromImage(labels), origin=(0.0, 0.0, 0.0))
    with pytest.raises(BadInputError, match="not on the grid of case7.nrrd"):
        prepare_model_input(image, shifted, CONFIG, source="case7.nrrd")
    only_peritumoral = sitk.GetArrayFromImage(labels)
    only_peritumoral[only_peritumoral < 3] = 0
    with pytest.raises(BadInputError, match="no tumour"):
        prepare_model_input(image, to_image(only_peritumoral), CONFIG, source="case7.nrrd")


def test_a_constant_image_is_refused():
    image, labels = make_case()
    constant = to_image(np.full(sitk.GetArrayViewFromImage(image).shape, 500, np.int16))
    with pytest.raises(BadInputError, match="constant"):
        prepare_model_input(constant, labels, CONFIG, source="flat.nii.gz")
