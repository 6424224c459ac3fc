"""Headless MRML for the Slicer module's logic: the real library from the ``slicer-core`` wheel.

Slicer's GUI application does this bootstrap itself; here we build the same minimum by hand:
a scene, an application logic with the default colour nodes, and the module logics whose
registration installs what the scene needs (segmentation conversion rules, subject hierarchy).
``slicer.util`` loaders need ``slicer.app`` and do not exist here, so tests use storage nodes.
"""

from __future__ import annotations

import types

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install -e '.[slicer]')")

pytestmark = pytest.mark.mrml


def _register(app_logic, scene, logic, name: str):
    logic.SetMRMLScene(scene)
    logic.SetMRMLApplicationLogic(app_logic)
    app_logic.SetModuleLogic(name, logic)
    return logic


@pytest.fixture
def mrml():
    """A fresh scene with the Colors, Volumes, Segmentations and SubjectHierarchy logics."""
    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    color_logic = app_logic.GetColorLogic()
    color_logic.SetMRMLScene(scene)
    color_logic.AddDefaultColorNodes()
    app_logic.SetModuleLogic("Colors", color_logic)
    logics = {
        name: _register(app_logic, scene, logic, name)
        for name, logic in (
            ("Volumes", slicer.vtkSlicerVolumesLogic()),
            ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic()),
            ("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic()),
        )
    }
    yield types.SimpleNamespace(scene=scene, app_logic=app_logic, logics=logics)
    scene.Clear(True)
