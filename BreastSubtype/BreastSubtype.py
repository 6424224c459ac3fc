"""BreastSubtype: ER, PR, HER2, Ki-67 and the surrogate molecular subtype from one post-contrast
breast DCE-MRI volume (3D Slicer module).

This file holds only the module's metadata. Slicer looks up the Widget, Logic and Test classes
here, so they are imported from their own files beside it. Nothing heavy is imported here:
torch, scipy and the model load on first use, after the dependency installer has run.
"""

from __future__ import annotations

from slicer.ScriptedLoadableModule import ScriptedLoadableModule

try:
    from slicer.i18n import tr as _
    from slicer.i18n import translate
except ImportError:  # Slicer without translations

    def _(text: str) -> str:
        return text

    def translate(_context: str, text: str) -> str:
        return text


from BreastSubtypeLogic import BreastSubtypeLogic  # noqa: E402,F401  (Slicer finds it here)
from BreastSubtypeTest import BreastSubtypeTest  # noqa: E402,F401
from BreastSubtypeWidget import BreastSubtypeWidget  # noqa: E402,F401


class BreastSubtype(ScriptedLoadableModule):
    def __init__(self, parent) -> None:
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("Breast Subtype")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Quantification")]
        self.parent.dependencies = ["Segmentations", "SubjectHierarchy", "Markups"]
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
            "Prediction from Single-Phase DCE-MRI (2026). Built on 3D Slicer, MONAI, PyTorch and "
            "SimpleITK; module structure follows SlicerNNUnet, SlicerMONAIAuto3DSeg and Slicer's "
            "SegmentStatistics."
        )
