"""Shared builders of small synthetic images (fixed seeds, tmp dirs made by each test)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk


def image_from_array(
    array_kji, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=None
) -> sitk.Image:
    """A sitk image from a ``[k, j, i]`` array with the given geometry (direction row-major 3×3)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_kji))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in origin])
    if direction is not None:
        image.SetDirection([float(d) for d in np.asarray(direction, dtype=float).ravel()])
    return image


def oblique_direction(angle_deg: float = 30.0) -> np.ndarray:
    """A rotation about z then x (a proper oblique grid)."""
    a = np.deg2rad(angle_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(a / 2), -np.sin(a / 2)], [0, np.sin(a / 2), np.cos(a / 2)]])
    return rz @ rx


def physical_points(image: sitk.Image) -> np.ndarray:
    """LPS coordinates of every voxel centre, shape ``[k, j, i, 3]``."""
    size = image.GetSize()
    k, j, i = np.meshgrid(*(np.arange(n) for n in reversed(size)), indexing="ij")
    index = np.stack([i, j, k], axis=-1).astype(float)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    return np.asarray(image.GetOrigin()) + (index * np.asarray(image.GetSpacing())) @ direction.T


def centred_origin(size, spacing, direction) -> np.ndarray:
    """Origin that puts the volume centre at the LPS origin, whatever the direction."""
    direction = np.asarray(direction if direction is not None else np.eye(3), dtype=float).reshape(3, 3)
    centre_index = (np.asarray(size, dtype=float) - 1) / 2
    return -(direction @ (centre_index * np.asarray(spacing)))


def ellipsoid_case(
    size=(64, 64, 40),
    spacing=(0.7, 0.7, 1.5),
    direction=None,
    radii_mm=(8.0, 8.0, 8.0),
    centre_mm=(0.0, 0.0, 0.0),
    tissue=300,
    lesion=900,
    seed=0,
):
    """(image, mask): int16 tissue with noise and a brighter ellipsoid (semi-axes ``radii_mm`` along LPS,
    centred at ``centre_mm``), and its uint8 mask; the volume centre is the LPS origin."""
    origin = centred_origin(size, spacing, direction)
    reference = image_from_array(np.zeros(tuple(reversed(size)), np.uint8), spacing, origin, direction)
    points = physical_points(reference) - np.asarray(centre_mm)
    inside = ((points / np.asarray(radii_mm)) ** 2).sum(axis=-1) <= 1.0
    rng = np.random.default_rng(seed)
    values = np.where(inside, lesion, tissue) + rng.normal(0, 10, inside.shape)
    image = image_from_array(values.astype(np.int16), spacing, origin, direction)
    mask = image_from_array(inside.astype(np.uint8), spacing, origin, direction)
    return image, mask


@pytest.fixture
def small_image() -> sitk.Image:
    """32×32×16 int16 volume at 0.7×0.7×1.5 mm with a bright cube, fixed seed."""
    rng = np.random.default_rng(1)
    array = rng.normal(200, 20, (16, 32, 32))
    array[5:11, 10:20, 10:20] += 500
    return image_from_array(array.astype(np.int16), (0.7, 0.7, 1.5), (-10.0, 20.0, 5.0))


@pytest.fixture
def synth():
    """The builders above, for tests (``synth.image_from_array(...)``, ``synth.ellipsoid_case(...)``)."""
    import types

    return types.SimpleNamespace(
        image_from_array=image_from_array,
        oblique_direction=oblique_direction,
        physical_points=physical_points,
        centred_origin=centred_origin,
        ellipsoid_case=ellipsoid_case,
    )
