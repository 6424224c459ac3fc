"""Files <-> nodes without ``slicer.util`` loaders (they need ``slicer.app``).

Segmentations go through MRML storage nodes so ``.seg.nrrd`` files keep segment names, colours
and terminology; plain images go through SimpleITK (``BreastSubtypeLib.imaging.io``), the same
reader and atomic writer the CLI uses, so geometry is handled once.
"""

from __future__ import annotations

import os
from pathlib import Path

import slicer

from BreastSubtypeLib.atomic import atomic_path
from BreastSubtypeLib.imaging.io import read_image, write_image
from BreastSubtypeMRML.volumes import sitk_from_volume_node, volume_node_from_sitk


def save_segmentation(segmentation_node, path: str | os.PathLike) -> Path:
    """Write a ``.seg.nrrd`` atomically; the node keeps no link to the temporary file."""
    path = Path(path)
    if not path.name.endswith(".seg.nrrd"):
        raise ValueError(f"A segmentation file must end in .seg.nrrd: {path}")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetUseCompression(True)
    with atomic_path(path) as tmp:
        storage.SetFileName(str(tmp))
        if not storage.WriteData(segmentation_node):
            raise OSError(f"Could not write the segmentation to {path}.")
    return path


def load_segmentation(scene, path: str | os.PathLike, name: str | None = None):
    """Read a ``.seg.nrrd`` into a new segmentation node (segment IDs, names, colours kept)."""
    path = Path(path)
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name or path.name.removesuffix(".seg.nrrd"))
    storage = scene.AddNewNodeByClass("vtkMRMLSegmentationStorageNode")
    storage.SetFileName(str(path))
    node.SetAndObserveStorageNodeID(storage.GetID())
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        scene.RemoveNode(storage)
        raise OSError(f"Could not read a segmentation from {path}.")
    node.CreateDefaultDisplayNodes()
    return node


def load_volume(scene, path: str | os.PathLike, name: str | None = None, *, labelmap: bool = False):
    """Read an image file (NRRD, NIfTI, MHA, DICOM folder) into a new volume node."""
    path = Path(path)
    image = read_image(path, what="labelmap" if labelmap else "image")
    stem = path.name.split(".")[0]
    return volume_node_from_sitk(scene, image, name or stem, labelmap=labelmap)


def save_volume(volume_node, path: str | os.PathLike) -> Path:
    """Write a volume node (or a labelmap node) to an image file atomically, geometry kept."""
    return write_image(sitk_from_volume_node(volume_node), path)
