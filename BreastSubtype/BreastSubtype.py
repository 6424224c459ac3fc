"""BreastSubtype: ER, PR, HER2, Ki-67 and the surrogate molecular subtype from one post-contrast
breast DCE-MRI volume (3D Slicer module).

The only ``.py`` file at the top of the module folder: Slicer loads every top-level ``.py`` of a
module path as a module and wants a ``ScriptedLoadableModule`` class named after the file
(qSlicerScriptedLoadableModuleFactory / qSlicerScriptedLoadableModule::setPythonSource). The Widget,
Logic and Test classes Slicer looks up here (``<Module>Widget``, ``<Module>Test`` attributes of
this module) live in ``BreastSubtypeModuleLib`` beside it. Nothing heavy is imported here: torch
and the model load in the background process, scipy on first use, after the dependency installer.
"""

from __future__ import annotations

import logging

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModule

try:
    from slicer.i18n import tr as _
    from slicer.i18n import translate
except ImportError:  # Slicer without translations

    def _(text: str) -> str:
        return text

    def translate(_context: str, text: str) -> str:
        return text


from BreastSubtypeModuleLib import paths  # noqa: E402  (this file's folder is on sys.path)

# Developer route ("Additional module paths" = <clone>/BreastSubtype): BreastSubtypeLib is one
# level up and Slicer put only this folder on sys.path. In an extension install it is beside us.
paths.make_lib_importable()

from BreastSubtypeModuleLib.logic import BreastSubtypeLogic  # noqa: E402,F401  (Slicer finds it here)
from BreastSubtypeModuleLib.selftest import BreastSubtypeTest  # noqa: E402,F401
from BreastSubtypeModuleLib.widget import BreastSubtypeWidget  # noqa: E402,F401


class BreastSubtype(ScriptedLoadableModule):
    def __init__(self, parent) -> None:
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Breast Subtype")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Quantification")]
        self.parent.dependencies = [
            "Segmentations",
            "SubjectHierarchy",
            "Markups",
            "Terminologies",
            "SampleData",
        ]
        self.parent.contributors = ["BreastSubtype team"]
        self.parent.helpText = _(
            "Estimates ER, PR and HER2 status (probabilities), the Ki-67 index (percent) and the "
            "surrogate molecular subtype of a breast cancer from one post-contrast DCE-MRI volume, with "
            "the spatial multi-task method of Zeng and Zhou (arXiv 2601.07001): tumour core, rim and "
            "peritumoral regions, multi-scale attention, attention heatmaps.<br><br>"
            "<b>Research use only.</b> The bundled model is a <b>demonstration model trained on "
            "synthetic phantoms</b>: its outputs say nothing about real patients and must not be used "
            "for clinical decisions."
        )
        self.parent.acknowledgementText = _(
            "Method: Zeng &amp; Zhou, Spatial Multi-Task Learning for Breast Cancer Molecular Subtype "
            "Prediction from Single-Phase DCE-MRI (2026). Built on 3D Slicer, PyTorch and SimpleITK; "
            "module structure follows SlicerNNUnet, SlicerMONAIAuto3DSeg and Slicer's SegmentStatistics."
        )
        # Sample data and terminology need their modules, which exist once startup has completed.
        slicer.app.connect("startupCompleted()", onStartupCompleted)


def onStartupCompleted() -> None:
    """Register the demo phantom and the segment terminology; sweep runs a crash left behind."""
    from BreastSubtypeModuleLib import prediction, sampledata, terminology

    for step in (sampledata.register, terminology.register):
        try:
            step()
        except Exception:  # one failing registration must not stop Slicer's startup
            logging.exception("BreastSubtype: %s failed", step.__module__)
    prediction.sweep_stale_work_dirs(slicer.app.temporaryPath)
