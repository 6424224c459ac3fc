"""Volume nodes <-> SimpleITK keep geometry exactly (LPS <-> RAS), including oblique directions."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from BreastSubtypeMRML import volumes


def _oblique_image(seed: int = 0) -> sitk.Image:
    rng = np.random.default_rng(seed)
    array = rng.integers(0, 4095, size=(5, 6, 7), dtype=np.int16)  # [k, j, i]
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.8, 1.5))
    image.SetOrigin((-10.25, 20.5, -30.75))
    angle = np.deg2rad(20.0)
    rotation = np.array(
        [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    image.SetDirection(tuple((rotation @ np.diag([1.0, -1.0, 1.0])).ravel()))  # oblique and flipped
    return image


def test_round_trip_keeps_voxels_and_geometry(mrml):
    image = _oblique_image()
    node = volumes.volume_node_from_sitk(mrml.scene, image, "input")
    back = volumes.sitk_from_volume_node(node)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(image))
    assert back.GetSpacing() == image.GetSpacing()
    np.testing.assert_allclose(back.GetOrigin(), image.GetOrigin(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(back.GetDirection(), image.GetDirection(), rtol=0, atol=1e-12)
    assert back.GetPixelID() == image.GetPixelID()


def test_node_origin_is_ras_of_the_lps_origin(mrml):
    image = _oblique_image()
    node = volumes.volume_node_from_sitk(mrml.scene, image, "input")
    assert node.GetOrigin() == (10.25, -20.5, -30.75)


def test_voxel_maps_to_the_same_physical_point(mrml):
    image = _oblique_image()
    node = volumes.volume_node_from_sitk(mrml.scene, image, "input")
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ijk = (3, 2, 4)
    ras = matrix.MultiplyPoint((*ijk, 1.0))[:3]
    lps = image.TransformIndexToPhysicalPoint(ijk)
    np.testing.assert_allclose(ras, (-lps[0], -lps[1], lps[2]), atol=1e-9)
    np.testing.assert_allclose(volumes.ijk_to_ras_matrix(image) @ (*ijk, 1.0), (*ras, 1.0), atol=1e-9)


def test_labelmap_node_class(mrml):
    mask = sitk.Cast(_oblique_image() > 2000, sitk.sitkUInt8)
    node = volumes.volume_node_from_sitk(mrml.scene, mask, "mask", labelmap=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
