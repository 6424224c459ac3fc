"""A scene with the module logics Slicer's application registers, for use without the Slicer GUI.

Slicer's application builds this at startup; scripts and tests that run on the ``slicer-core``
wheel build the same minimum: a scene, an application logic with the default colour nodes, and
the Volumes, Segmentations and SubjectHierarchy logics (segments cannot be created before the
Segmentations logic is registered; the subject hierarchy needs its logic too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import slicer


@dataclass
class HeadlessScene:
    scene: object
    app_logic: object
    logics: dict = field(default_factory=dict)

    def close(self) -> None:
        self.scene.Clear(True)


def headless_scene() -> HeadlessScene:
    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    color_logic = app_logic.GetColorLogic()
    color_logic.SetMRMLScene(scene)
    color_logic.AddDefaultColorNodes()
    app_logic.SetModuleLogic("Colors", color_logic)
    logics = {}
    for name, logic in (
        ("Volumes", slicer.vtkSlicerVolumesLogic()),
        ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic()),
        ("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic()),
    ):
        logic.SetMRMLScene(scene)
        logic.SetMRMLApplicationLogic(app_logic)
        app_logic.SetModuleLogic(name, logic)
        logics[name] = logic
    return HeadlessScene(scene, app_logic, logics)
