"""The module's state: one typed parameter node, bound to the .ui by ``SlicerParameterName``.

Widgets bound here are never connected to by hand: the widget reacts to the parameter node's
ModifiedEvent, which fires after the connector has stored the new value (a signal connected to
the widget directly could run before the connector and read the previous value)."""

from __future__ import annotations

import enum
from typing import Annotated

import slicer
from slicer.parameterNodeWrapper import Default, WithinRange, parameterNodeWrapper

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer without translations

    def _(text: str) -> str:
        return text


class Device(enum.Enum):
    """Where the network runs; the widget appends the detected GPU's name to "GPU"."""

    AUTO = "auto"
    GPU = "cuda"
    CPU = "cpu"

    @staticmethod
    def label(value: Device) -> str:
        return {Device.AUTO: _("Auto (GPU if available)"), Device.GPU: _("GPU"), Device.CPU: _("CPU")}[value]


@parameterNodeWrapper
class BreastSubtypeParameterNode:
    """Inputs, ROI widths (mm), model and device, and how results are shown."""

    inputVolume: slicer.vtkMRMLScalarVolumeNode
    tumourSegmentation: slicer.vtkMRMLSegmentationNode
    seedPoint: slicer.vtkMRMLMarkupsFiducialNode
    tumourBox: slicer.vtkMRMLMarkupsROINode
    rim_mm: Annotated[float, WithinRange(0.5, 10.0), Default(3.0)]
    peri_mm: Annotated[float, WithinRange(1.0, 20.0), Default(5.0)]
    roiSegmentation: slicer.vtkMRMLSegmentationNode
    modelId: Annotated[str, Default("demo")]
    device: Annotated[Device, Default(Device.AUTO)]
    heatmapVolume: slicer.vtkMRMLScalarVolumeNode
    heatmapOpacity: Annotated[float, WithinRange(0.0, 1.0), Default(0.5)]
    heatmapThreshold: Annotated[float, WithinRange(0.0, 1.0), Default(0.2)]
    resultsTable: slicer.vtkMRMLTableNode
    marginEvidenceTable: slicer.vtkMRMLTableNode
