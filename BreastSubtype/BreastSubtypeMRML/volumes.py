"""Volume nodes <-> SimpleITK images with exact geometry.

MRML volumes live in RAS (``IJKToRAS``); SimpleITK images in LPS. The only change between the two
is the sign of the first two physical axes, applied to the origin and to the direction columns, so
spacing, origin and an oblique direction survive a round trip bit for bit.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer
import vtk
from vtk.util import numpy_support

_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0])


def _direction_ras(volume_node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASDirectionMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)])


def geometry_lps(volume_node) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """``(spacing, origin, direction)`` of a volume node as SimpleITK expects them (LPS)."""
    spacing = tuple(float(v) for v in volume_node.GetSpacing())
    origin = tuple(float(v) for v in _LPS_FROM_RAS @ np.array(volume_node.GetOrigin()))
    direction = tuple(float(v) for v in (_LPS_FROM_RAS @ _direction_ras(volume_node)).ravel())
    return spacing, origin, direction


def array_from_volume_node(volume_node) -> np.ndarray:
    """A copy of the voxels indexed ``[k, j, i]``, like ``sitk.GetArrayFromImage``."""
    image_data = volume_node.GetImageData()
    if image_data is None:
        raise ValueError(f"Volume node '{volume_node.GetName()}' has no image data.")
    dims = image_data.GetDimensions()
    scalars = numpy_support.vtk_to_numpy(image_data.GetPointData().GetScalars())
    if image_data.GetNumberOfScalarComponents() != 1:
        raise ValueError(f"Volume node '{volume_node.GetName()}' has more than one component per voxel.")
    return scalars.reshape(dims[2], dims[1], dims[0]).copy()


def sitk_from_volume_node(volume_node) -> sitk.Image:
    """The volume as a ``sitk.Image`` with its physical geometry (LPS).

    >>> image = sitk_from_volume_node(slicer.util.getNode("MRHead"))  # doctest: +SKIP
    """
    image = sitk.GetImageFromArray(array_from_volume_node(volume_node))
    spacing, origin, direction = geometry_lps(volume_node)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


def set_volume_node_geometry_from_sitk(volume_node, image: sitk.Image) -> None:
    """Copy spacing, origin and direction of ``image`` (LPS) onto ``volume_node`` (RAS)."""
    direction_ras = _LPS_FROM_RAS @ np.array(image.GetDirection()).reshape(3, 3)
    matrix = vtk.vtkMatrix4x4()
    for r in range(3):
        for c in range(3):
            matrix.SetElement(r, c, direction_ras[r, c])
    volume_node.SetIJKToRASDirectionMatrix(matrix)
    volume_node.SetSpacing(*image.GetSpacing())
    volume_node.SetOrigin(*(_LPS_FROM_RAS @ np.array(image.GetOrigin())))


def update_volume_node_from_sitk(volume_node, image: sitk.Image) -> None:
    """Replace voxels and geometry of an existing node (display settings are kept)."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("Only 3D single-component images can become volume nodes.")
    array = np.ascontiguousarray(sitk.GetArrayViewFromImage(image))
    image_data = vtk.vtkImageData()
    image_data.SetDimensions(image.GetSize())
    vtk_array = numpy_support.numpy_to_vtk(array.ravel(), deep=True)
    image_data.GetPointData().SetScalars(vtk_array)
    set_volume_node_geometry_from_sitk(volume_node, image)
    volume_node.SetAndObserveImageData(image_data)


def volume_node_from_sitk(scene, image: sitk.Image, name: str, *, labelmap: bool = False):
    """Add ``image`` to ``scene`` as a scalar (or labelmap) volume node with display nodes."""
    class_name = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = scene.AddNewNodeByClass(class_name, name)
    update_volume_node_from_sitk(node, image)
    node.CreateDefaultDisplayNodes()
    return node


def ijk_to_ras_matrix(image: sitk.Image) -> np.ndarray:
    """The 4x4 IJK-to-RAS matrix an MRML volume node built from ``image`` has."""
    direction = _LPS_FROM_RAS @ np.array(image.GetDirection()).reshape(3, 3)
    matrix = np.eye(4)
    matrix[:3, :3] = direction * np.array(image.GetSpacing())
    matrix[:3, 3] = _LPS_FROM_RAS @ np.array(image.GetOrigin())
    return matrix


def is_scalar_volume(node) -> bool:
    return isinstance(node, slicer.vtkMRMLScalarVolumeNode)
