"""Choosing the post-contrast phase of a DCE series: Sequence nodes and MultiVolume-style volumes."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import slicer
import vtk

from BreastSubtypeMRML import phases, volumes


def _phase_image(value: int) -> sitk.Image:
    image = sitk.GetImageFromArray(np.full((3, 4, 5), value, dtype=np.int16))
    image.SetSpacing((0.7, 0.8, 1.5))
    image.SetOrigin((10.0, -20.0, 30.0))
    image.SetDirection((0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    return image


def _sequence(scene, index_values, values, *, name="time", unit="s", numeric=True):
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", "DCE")
    sequence.SetIndexName(name)
    sequence.SetIndexUnit(unit)
    if not numeric:
        sequence.SetIndexType(slicer.vtkMRMLSequenceNode.TextIndex)
    for index_value, value in zip(index_values, values):
        frame = volumes.volume_node_from_sitk(scene, _phase_image(value), f"frame {value}")
        sequence.SetDataNodeAtValue(frame, index_value)
        scene.RemoveNode(frame)
    return sequence


def test_sequence_phases_are_labelled_with_their_acquisition_time(mrml):
    sequence = _sequence(mrml.scene, ["30", "90", "150"], [100, 200, 300])
    found = phases.series_phases(sequence)
    assert [p.stored_index for p in found] == [0, 1, 2]
    assert [p.time_s for p in found] == [0.0, 60.0, 120.0]  # after the first phase
    assert [p.label for p in found] == [
        "Phase 1 of 3, 0 s (pre-contrast)",
        "Phase 2 of 3, 60 s (first post-contrast)",
        "Phase 3 of 3, 120 s",
    ]
    assert phases.default_phase(found) == 1


def test_multivolume_importer_times_in_ms_are_used(mrml):
    # MultiVolumeImporter's sequence: index "0", "1", ... with no name; times in the attributes.
    sequence = _sequence(mrml.scene, ["0", "1", "2"], [100, 200, 300], name="", unit="")
    sequence.SetAttribute("MultiVolume.FrameIdentifyingDICOMTagName", "AcquisitionTime")
    sequence.SetAttribute("MultiVolume.FrameIdentifyingDICOMTagUnits", "ms")
    sequence.SetAttribute("MultiVolume.FrameLabels", "90000,0,180000")
    found = phases.series_phases(sequence)
    assert [(p.stored_index, p.time_s) for p in found] == [(1, 0.0), (0, 90.0), (2, 180.0)]


def test_without_times_the_stored_order_is_used(mrml):
    sequence = _sequence(mrml.scene, ["b", "a"], [100, 200], name="frame", unit="", numeric=False)
    found = phases.series_phases(sequence)
    assert [(p.stored_index, p.time_s, p.label) for p in found] == [
        (0, None, "Phase 1 of 2 (pre-contrast)"),
        (1, None, "Phase 2 of 2 (first post-contrast)"),
    ]
    single = _sequence(mrml.scene, ["0"], [100])
    assert phases.default_phase(phases.series_phases(single)) == 0
    with pytest.raises(ValueError):
        phases.default_phase([])


def test_chosen_sequence_phase_becomes_a_volume_with_its_geometry(mrml):
    sequence = _sequence(mrml.scene, ["0", "1", "2"], [200, 100, 300], name="", unit="")
    sequence.SetAttribute("MultiVolume.FrameIdentifyingDICOMTagName", "AcquisitionTime")
    sequence.SetAttribute("MultiVolume.FrameLabels", "60000,0,120000")  # ms, MultiVolumeImporter's unit
    chosen = phases.series_phases(sequence)[phases.default_phase(phases.series_phases(sequence))]
    volume = phases.extract_phase(mrml.scene, sequence, chosen)
    image = volumes.sitk_from_volume_node(volume)
    assert np.unique(sitk.GetArrayViewFromImage(image)).tolist() == [200]  # stored first, acquired second
    reference = _phase_image(0)
    assert image.GetSpacing() == pytest.approx(reference.GetSpacing())
    assert image.GetOrigin() == pytest.approx(reference.GetOrigin())
    assert image.GetDirection() == pytest.approx(reference.GetDirection())
    assert volume.GetAttribute("BreastSubtype.Phase") == "Phase 2 of 3, 60 s (first post-contrast)"
    assert phases.is_dce_series(sequence) and not phases.is_dce_series(volume)


def test_multivolume_component_becomes_a_volume(mrml):
    """A MultiVolume is one volume with a component per phase (MultiVolumeImporter)."""
    frames = np.stack([np.full((3, 4, 5), v, np.int16) for v in (100, 250, 400)], axis=-1)
    image_data = vtk.vtkImageData()
    image_data.SetDimensions(5, 4, 3)
    image_data.AllocateScalars(vtk.VTK_SHORT, 3)
    from vtk.util import numpy_support

    image_data.GetPointData().GetScalars().DeepCopy(
        numpy_support.numpy_to_vtk(frames.reshape(-1, 3), deep=True)
    )
    multivolume = mrml.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "DCE multivolume")
    multivolume.SetAndObserveImageData(image_data)
    multivolume.SetSpacing(0.7, 0.8, 1.5)
    multivolume.SetOrigin(-1.0, 2.0, 3.0)
    multivolume.SetAttribute("MultiVolume.FrameIdentifyingDICOMTagName", "TriggerTime")
    multivolume.SetAttribute("MultiVolume.FrameLabels", "0,65000,130000")
    assert phases.is_dce_series(multivolume)
    found = phases.series_phases(multivolume)
    volume = phases.extract_phase(mrml.scene, multivolume, found[phases.default_phase(found)])
    assert np.unique(volumes.array_from_volume_node(volume)).tolist() == [250]
    assert volume.GetSpacing() == pytest.approx((0.7, 0.8, 1.5))
    assert volume.GetOrigin() == pytest.approx((-1.0, 2.0, 3.0))
