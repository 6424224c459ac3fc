"""Heatmap volumes: input grid kept, perceptual colour table from data, window and threshold."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from BreastSubtypeLib.reports.colormaps import lookup_table
from BreastSubtypeMRML import heatmaps, volumes


def _heatmap() -> sitk.Image:
    values = np.linspace(0.0, 2.0, 6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8)
    image = sitk.GetImageFromArray(values)
    image.SetSpacing((0.7, 0.7, 1.1))
    image.SetOrigin((-5.0, 3.0, 9.0))
    image.SetDirection((1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0))
    return image


def test_heatmap_keeps_the_input_grid_and_values(mrml):
    heatmap = _heatmap()
    node = heatmaps.add_heatmap_volume(mrml.scene, heatmap, "attention")
    back = volumes.sitk_from_volume_node(node)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(back), sitk.GetArrayViewFromImage(heatmap))
    np.testing.assert_allclose(back.GetDirection(), heatmap.GetDirection(), atol=1e-12)
    np.testing.assert_allclose(back.GetOrigin(), heatmap.GetOrigin(), atol=1e-12)


def test_colour_table_is_built_from_the_colour_data(mrml):
    node = heatmaps.perceptual_color_node(mrml.scene, "inferno")
    table = lookup_table("inferno")
    assert node.GetNumberOfColors() == 256
    for index in (0, 100, 255):
        rgba = [0.0] * 4
        node.GetColor(index, rgba)
        np.testing.assert_allclose(rgba[:3], table[index] / 255.0, atol=1e-6)
    assert heatmaps.perceptual_color_node(mrml.scene, "inferno") is node  # created once per scene


def test_window_spans_data_and_threshold_is_a_fraction_of_the_range(mrml):
    node = heatmaps.add_heatmap_volume(mrml.scene, _heatmap(), "attention", threshold_fraction=0.25)
    display = node.GetDisplayNode()
    assert display.GetColorNodeID() == heatmaps.perceptual_color_node(mrml.scene).GetID()
    assert display.GetAutoWindowLevel() == 0
    assert display.GetWindow() == pytest.approx(2.0)
    assert display.GetLevel() == pytest.approx(1.0)
    assert display.GetApplyThreshold() == 1
    assert display.GetLowerThreshold() == pytest.approx(0.5)
    heatmaps.set_heatmap_threshold(node, 0.5)
    assert display.GetLowerThreshold() == pytest.approx(1.0)


def test_overlay_goes_to_the_foreground_of_every_slice_view(mrml):
    background = volumes.volume_node_from_sitk(mrml.scene, sitk.Cast(_heatmap(), sitk.sitkInt16), "input")
    node = heatmaps.add_heatmap_volume(mrml.scene, _heatmap(), "attention")
    composites = [mrml.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode") for _ in range(3)]
    assert heatmaps.show_overlay(mrml.scene, background, node, opacity=0.4) == 3
    for composite in composites:
        assert composite.GetForegroundVolumeID() == node.GetID()
        assert composite.GetBackgroundVolumeID() == background.GetID()
        assert composite.GetForegroundOpacity() == pytest.approx(0.4)


def test_bad_threshold_fraction_is_refused():
    with pytest.raises(ValueError, match="threshold_fraction"):
        heatmaps.display_range(_heatmap(), 1.5)


def test_colour_table_reference_is_released(mrml):
    """CreateNodeByClass hands over a reference: once the scene lets the node go, only ours is left."""
    node = heatmaps.perceptual_color_node(mrml.scene, "viridis")
    mrml.scene.RemoveNode(node)
    assert node.GetReferenceCount() == 1


class _NoVoxels:
    def __getattr__(self, name):
        raise AssertionError(f"a slider tick read voxels (SimpleITK.{name})")


def test_threshold_and_opacity_ticks_read_no_voxel(mrml, monkeypatch):
    node = heatmaps.add_heatmap_volume(mrml.scene, _heatmap(), "attention", threshold_fraction=0.2)
    background = volumes.volume_node_from_sitk(mrml.scene, sitk.Cast(_heatmap(), sitk.sitkInt16), "input")
    composite = mrml.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    monkeypatch.setattr(heatmaps, "sitk", _NoVoxels())
    monkeypatch.setattr(volumes, "sitk", _NoVoxels())
    monkeypatch.setattr(volumes, "numpy_support", _NoVoxels())
    display = heatmaps.set_heatmap_threshold(node, 0.75)
    assert (display.window_min, display.window_max, display.threshold) == pytest.approx((0.0, 2.0, 1.5))
    assert node.GetDisplayNode().GetLowerThreshold() == pytest.approx(1.5)
    assert heatmaps.show_overlay(mrml.scene, background, node, 0.3) == 1
    assert heatmaps.set_overlay_opacity(mrml.scene, 0.8) == 1
    assert composite.GetForegroundOpacity() == pytest.approx(0.8)
    assert composite.GetForegroundVolumeID() == node.GetID()
    with pytest.raises(ValueError, match="opacity"):
        heatmaps.set_overlay_opacity(mrml.scene, 1.5)
