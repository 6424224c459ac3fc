"""Subject hierarchy: every result goes into one folder under the input volume's study.

A volume loaded from DICOM sits under Patient > Study; a volume loaded from a file sits at the top.
In the first case results join the study the radiologist is reading; in the second they share the
volume's parent, so the scene tree never scatters results across the top level.
"""

from __future__ import annotations

import slicer


def _hierarchy(scene):
    node = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if node is None:
        raise RuntimeError("The scene has no subject hierarchy (register the SubjectHierarchy logic).")
    return node


def item_of(scene, node) -> int:
    """The node's subject hierarchy item; added at the top level if it has none.

    Slicer's GUI adds an item for every new node (a Qt plugin does it); bare MRML does not.
    """
    sh = _hierarchy(scene)
    return sh.GetItemByDataNode(node) or sh.CreateItem(sh.GetSceneItemID(), node)


def study_item(scene, volume_node) -> int:
    """The study item that holds ``volume_node``, or its parent item when it has no study."""
    sh = _hierarchy(scene)
    volume_item = item_of(scene, volume_node)
    study = sh.GetItemAncestorAtLevel(
        volume_item, slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMLevelStudy()
    )
    if study:
        return study
    return sh.GetItemParent(volume_item)


def results_folder(scene, volume_node, name: str) -> int:
    """The folder item ``name`` beside the input in its study; created once and reused."""
    sh = _hierarchy(scene)
    parent = study_item(scene, volume_node)
    existing = sh.GetItemChildWithName(parent, name)
    if existing:
        return existing
    return sh.CreateFolderItem(parent, name)


def place_in_folder(scene, folder_item: int, *nodes) -> None:
    """Move (or add) each node's subject hierarchy item under ``folder_item``."""
    sh = _hierarchy(scene)
    for node in nodes:
        if node is None:
            continue
        sh.SetItemParent(item_of(scene, node), folder_item)
