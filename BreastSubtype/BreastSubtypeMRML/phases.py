"""The phase of a DCE-MRI series the model reads: the first post-contrast one by default.

A dynamic series arrives in Slicer as a Sequence node (DICOM import, ``.seq.nrrd``) or as a
MultiVolume (one multi-component volume, older MultiVolumeImporter). Acquisition times come from
the MultiVolume attributes the importer writes (``MultiVolume.FrameLabels`` with the identifying
DICOM tag and its unit; the importer copies them onto the Sequence too) or from a numeric time
index of the Sequence. With times, phases are ordered by time and the earliest is taken as the
pre-contrast one; without, the stored order is used. The user can pick any phase; the chosen one
becomes an ordinary scalar volume (geometry kept) beside the series.
"""

from __future__ import annotations

from dataclasses import dataclass

import slicer
import vtk

_TIME_TAGS = {"AcquisitionTime", "TriggerTime", "ContentTime", "SeriesTime", "Time", "DeltaStartTime"}
_SECONDS_PER_UNIT = {"ms": 0.001, "msec": 0.001, "s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0}
_TIME_INDEX_NAMES = {"time", "acquisitiontime", "triggertime", "contenttime"}


@dataclass(frozen=True)
class Phase:
    stored_index: int  # position in the node as stored (sequence item or image component)
    time_s: float | None  # seconds after the earliest phase, when the series says
    label: str  # what the user sees in the phase list


def is_dce_series(node) -> bool:
    """A Sequence of volumes, or a volume with several components per voxel (MultiVolume)."""
    if node is None:
        return False
    if node.IsA("vtkMRMLSequenceNode"):
        return node.GetNumberOfDataNodes() > 0 and node.GetNthDataNode(0).IsA("vtkMRMLScalarVolumeNode")
    image = node.GetImageData() if node.IsA("vtkMRMLScalarVolumeNode") else None
    return image is not None and image.GetNumberOfScalarComponents() > 1


def _count(node) -> int:
    if node.IsA("vtkMRMLSequenceNode"):
        return node.GetNumberOfDataNodes()
    return node.GetImageData().GetNumberOfScalarComponents()


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def acquisition_times_s(node) -> list[float] | None:
    """Each stored phase's acquisition time in seconds, or None when the series does not say."""
    count = _count(node)
    tag = node.GetAttribute("MultiVolume.FrameIdentifyingDICOMTagName") or ""
    labels = node.GetAttribute("MultiVolume.FrameLabels")
    if tag in _TIME_TAGS and labels:
        unit = (node.GetAttribute("MultiVolume.FrameIdentifyingDICOMTagUnits") or "ms").strip().lower()
        values = [_float(v) for v in labels.split(",")]
        if len(values) == count and None not in values and unit in _SECONDS_PER_UNIT:
            return [v * _SECONDS_PER_UNIT[unit] for v in values]
    if node.IsA("vtkMRMLSequenceNode") and node.GetIndexType() == slicer.vtkMRMLSequenceNode.NumericIndex:
        unit = (node.GetIndexUnit() or "").strip().lower()
        if unit in _SECONDS_PER_UNIT and (node.GetIndexName() or "").strip().lower() in _TIME_INDEX_NAMES:
            values = [_float(node.GetNthIndexValue(i)) for i in range(count)]
            if None not in values:
                return [v * _SECONDS_PER_UNIT[unit] for v in values]
    return None


def series_phases(node) -> list[Phase]:
    """The phases in acquisition order (stored order without times), labelled for the user."""
    count = _count(node)
    times = acquisition_times_s(node)
    order = sorted(range(count), key=lambda i: times[i]) if times else list(range(count))
    start = min(times) if times else 0.0
    phases = []
    for position, stored in enumerate(order):
        role = {0: " (pre-contrast)", 1: " (first post-contrast)"}.get(position, "") if count > 1 else ""
        when = f", {times[stored] - start:.0f} s" if times else ""
        phases.append(
            Phase(
                stored,
                None if times is None else times[stored] - start,
                f"Phase {position + 1} of {count}{when}{role}",
            )
        )
    return phases


def default_phase(phases: list[Phase]) -> int:
    """Position (in ``phases``) of the first post-contrast phase: the second in time, if there is one."""
    if not phases:
        raise ValueError("The series has no phases.")
    return 1 if len(phases) > 1 else 0


def extract_phase(scene, node, phase: Phase, name: str | None = None):
    """The chosen phase as a new scalar volume node on the series' grid (voxels copied)."""
    name = name or f"{node.GetName()} {phase.label.split(' (')[0].lower()}"
    if node.IsA("vtkMRMLSequenceNode"):
        source = node.GetNthDataNode(phase.stored_index)
        volume = scene.AddNewNodeByClass(source.GetClassName(), name)
        volume.CopyContent(source, True)
    else:
        extract = vtk.vtkImageExtractComponents()
        extract.SetInputData(node.GetImageData())
        extract.SetComponents(phase.stored_index)
        extract.Update()
        volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
        matrix = vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(matrix)
        volume.SetIJKToRASMatrix(matrix)
        image = vtk.vtkImageData()
        image.DeepCopy(extract.GetOutput())
        volume.SetAndObserveImageData(image)
    volume.SetName(name)
    volume.SetAttribute("BreastSubtype.Phase", phase.label)
    volume.CreateDefaultDisplayNodes()
    return volume
