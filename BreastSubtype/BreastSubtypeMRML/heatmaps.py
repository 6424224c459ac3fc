"""Heatmap volumes (attention, Grad-CAM) as foreground overlays with a perceptual colour table.

The colour table is built from the colour data in ``BreastSubtypeLib.reports.colormaps`` (the same
one the PNG overlays use), so the maps look identical in Slicer, the web app and the report, and
nothing depends on an "Inferno" node being present in the host application.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.reports.colormaps import lookup_table
from BreastSubtypeMRML.volumes import volume_node_from_sitk

COLOR_NODE_PREFIX = "BreastSubtype "


def perceptual_color_node(scene, colormap: str = "inferno"):
    """The scene's ``BreastSubtype <colormap>`` colour table, created on first use (256 entries)."""
    name = f"{COLOR_NODE_PREFIX}{colormap}"
    existing = scene.GetFirstNode(name, "vtkMRMLColorTableNode")
    if existing is not None:
        return existing
    table = lookup_table(colormap) / 255.0
    node = scene.CreateNodeByClass("vtkMRMLColorTableNode")
    node.UnRegister(None)  # CreateNodeByClass returns an owned reference; the Python object holds one
    node.SetName(name)
    node.SetTypeToUser()
    node.SetNumberOfColors(len(table))
    for index, (r, g, b) in enumerate(table):
        node.SetColor(index, r, g, b, 1.0)
    node.SetAttribute("Category", "BreastSubtype")
    scene.AddNode(node)
    return node


@dataclass(frozen=True)
class HeatmapDisplay:
    """How a heatmap is shown: the window spans the map's range, values below threshold are hidden."""

    window_min: float
    window_max: float
    threshold: float


def display_range(heatmap: sitk.Image, threshold_fraction: float = 0.0) -> HeatmapDisplay:
    """Window from the data (min..max) and a threshold at ``threshold_fraction`` of that range."""
    if not 0.0 <= threshold_fraction <= 1.0:
        raise ValueError(f"threshold_fraction must be in [0, 1], got {threshold_fraction}.")
    values = sitk.GetArrayViewFromImage(heatmap)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if high <= low:
        high = low + 1.0
    return HeatmapDisplay(low, high, low + threshold_fraction * (high - low))


def apply_heatmap_display(volume_node, display: HeatmapDisplay, colormap: str = "inferno") -> None:
    """Colour table, fixed window/level and lower threshold on the heatmap's display node."""
    scene = volume_node.GetScene()
    if volume_node.GetDisplayNode() is None:
        volume_node.CreateDefaultDisplayNodes()
    display_node = volume_node.GetDisplayNode()
    display_node.SetAndObserveColorNodeID(perceptual_color_node(scene, colormap).GetID())
    display_node.AutoWindowLevelOff()
    display_node.SetWindowLevelMinMax(display.window_min, display.window_max)
    display_node.AutoThresholdOff()
    display_node.SetLowerThreshold(display.threshold)
    display_node.SetUpperThreshold(display.window_max)
    display_node.ApplyThresholdOn()


def set_heatmap_threshold(volume_node, threshold_fraction: float) -> HeatmapDisplay:
    """Move the threshold of an existing heatmap node to a fraction of its value range.

    The range is the window :func:`apply_heatmap_display` fixed from the data, so a slider tick
    reads no voxel (a full-volume conversion per tick made the slider lag on large volumes).
    """
    if not 0.0 <= threshold_fraction <= 1.0:
        raise ValueError(f"threshold_fraction must be in [0, 1], got {threshold_fraction}.")
    display_node = volume_node.GetDisplayNode()
    low, high = display_node.GetWindowLevelMin(), display_node.GetWindowLevelMax()
    display = HeatmapDisplay(low, high, low + threshold_fraction * (high - low))
    display_node.SetLowerThreshold(display.threshold)
    display_node.SetUpperThreshold(display.window_max)
    return display


def add_heatmap_volume(
    scene, heatmap: sitk.Image, name: str, *, threshold_fraction: float = 0.2, colormap: str = "inferno"
):
    """A scalar volume node of ``heatmap`` (its own grid, normally the input's) ready to overlay."""
    node = volume_node_from_sitk(scene, sitk.Cast(heatmap, sitk.sitkFloat32), name)
    apply_heatmap_display(node, display_range(heatmap, threshold_fraction), colormap)
    node.SetAttribute("BreastSubtype.Heatmap", "1")
    return node


def show_overlay(scene, background_volume_node, heatmap_volume_node, opacity: float = 0.5) -> int:
    """Put the heatmap in the foreground layer of every slice view; returns the views updated.

    Works on the scene's slice composite nodes, so it serves Slicer and the web app alike.
    """
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}.")
    count = scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")  # no collection to release
    for index in range(count):
        composite = scene.GetNthNodeByClass(index, "vtkMRMLSliceCompositeNode")
        if background_volume_node is not None:
            composite.SetBackgroundVolumeID(background_volume_node.GetID())
        composite.SetForegroundVolumeID(heatmap_volume_node.GetID() if heatmap_volume_node else None)
        composite.SetForegroundOpacity(opacity)
    return count


def set_overlay_opacity(scene, opacity: float) -> int:
    """Only the foreground opacity of every slice view (the opacity slider: nothing else changes)."""
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}.")
    count = scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")
    for index in range(count):
        scene.GetNthNodeByClass(index, "vtkMRMLSliceCompositeNode").SetForegroundOpacity(opacity)
    return count
