"""What a radiologist needs to read the views: orientation letters, slice number and position, window and
level (drag or presets), views centred where it matters, ROIs as outlines, lesion surfaces in 3-D.

Letters and numbers come from each slice node's own geometry (``SliceToRAS``), so they stay right for any
orientation, and are published as trame state (``bs_views``) that the overlays of each view show.
Window/level by drag is Slicer's own widget (``vtkMRMLWindowLevelWidget``), switched on while the left
button goes down in a slice view with no editing tool in hand; the 3-D view keeps its rotation.
"""

from __future__ import annotations

import numpy as np

# (negative, positive) letter along R, A, S: RAS +x points to the patient's right.
_AXIS_LETTERS = (("L", "R"), ("P", "A"), ("I", "S"))
WINDOW_PRESETS = {"auto": "Auto", "full": "Full range", "enhancing": "Enhancing lesion"}
# Percentiles (low, high) of each preset's window; "auto" is Slicer's own automatic window.
_PRESET_PERCENTILES = {"full": (0.0, 100.0), "enhancing": (50.0, 99.9)}
# Segment outlines only, so the anatomy under them stays visible; a faint fill while painting.
OUTLINE_THICKNESS_PX = 2
EDIT_FILL_OPACITY = 0.25
# 3-D: the peritumoral shell is see-through so the rim and core inside show.
SURFACE_OPACITY = {"peritumoral": 0.3, "rim": 0.6, "core": 1.0, "tumour": 0.8}


def direction_letter(direction_ras) -> str:
    """The letter of the patient direction a screen direction points to, e.g. (-1, 0, 0) -> 'L'."""
    direction = np.asarray(direction_ras, dtype=float)
    axis = int(np.argmax(np.abs(direction)))
    negative, positive = _AXIS_LETTERS[axis]
    return positive if direction[axis] > 0 else negative


def view_annotation(slice_node, volume_node) -> dict:
    """Edge letters, orientation name, slice position (mm along the normal) and number of one slice view."""
    slice_to_ras = np.array(
        [[slice_node.GetSliceToRAS().GetElement(r, c) for c in range(4)] for r in range(4)]
    )
    right, up, normal, centre = (
        slice_to_ras[:3, 0],
        slice_to_ras[:3, 1],
        slice_to_ras[:3, 2],
        slice_to_ras[:3, 3],
    )
    axis = int(np.argmax(np.abs(normal)))
    annotation = {
        "left": direction_letter(-right),
        "right": direction_letter(right),
        "top": direction_letter(up),
        "bottom": direction_letter(-up),
        "orientation": slice_node.GetOrientation(),
        "position": f"{'RAS'[axis]} {centre[axis]:.1f} mm",
        "slice": "",
    }
    if volume_node is not None and volume_node.GetImageData() is not None:
        annotation["slice"] = _slice_number(volume_node, centre, normal)
    return annotation


def _slice_number(volume_node, centre_ras, normal_ras) -> str:
    """'slice k / n' along the volume axis closest to the view normal (1-based, as a PACS counts)."""
    import vtk

    ras_to_ijk = vtk.vtkMatrix4x4()
    volume_node.GetRASToIJKMatrix(ras_to_ijk)
    matrix = np.array([[ras_to_ijk.GetElement(r, c) for c in range(4)] for r in range(4)])
    ijk = matrix @ np.append(centre_ras, 1.0)
    ijk_normal = matrix[:3, :3] @ np.asarray(normal_ras)
    axis = int(np.argmax(np.abs(ijk_normal)))
    count = volume_node.GetImageData().GetDimensions()[axis]
    index = int(np.floor(ijk[axis] + 0.5))
    if not 0 <= index < count:
        return f"outside the volume (0 / {count})"
    return f"slice {index + 1} / {count}"


def window_level_text(volume_node) -> str:
    display = volume_node.GetDisplayNode() if volume_node is not None else None
    if display is None:
        return ""
    return f"W {display.GetWindow():.0f}  L {display.GetLevel():.0f}"


def apply_window_preset(volume_node, preset: str) -> None:
    from trame_slicer.core import VolumeWindowLevel

    if preset not in WINDOW_PRESETS:
        raise ValueError(f"Unknown window preset {preset!r}; expected one of {', '.join(WINDOW_PRESETS)}.")
    display = VolumeWindowLevel.get_volume_display_node(volume_node)
    if preset == "auto":
        display.AutoWindowLevelOn()
        return
    low, high = _percentile_range(volume_node, *_PRESET_PERCENTILES[preset])
    VolumeWindowLevel.set_volume_node_display_min_max_range(volume_node, low, high)


def _percentile_range(volume_node, low_percent: float, high_percent: float) -> tuple[float, float]:
    from vtkmodules.vtkImagingStatistics import vtkImageHistogramStatistics

    stats = vtkImageHistogramStatistics()
    stats.SetAutoRangePercentiles(low_percent, high_percent)
    stats.SetAutoRangeExpansionFactors(0, 0)
    stats.SetInputData(volume_node.GetImageData())
    stats.Update()
    low, high = stats.GetAutoRange()
    return (low, high) if high > low else (low, low + 1.0)


class MouseModeFollowsView:
    """Left-drag adjusts window/level in slice views and rotates the 3-D view.

    Slicer keeps one interaction mode for all views; this switches it when a button goes down, before
    Slicer's own interactor style sees the event, unless a point is being placed or a tool is in hand.
    """

    PRIORITY = 10.0  # above the interactor style's observers

    def __init__(self, scene, view_manager, tool_in_hand) -> None:
        self.scene = scene
        self.tool_in_hand = tool_in_hand  # () -> bool: a brush or eraser is active
        for view in view_manager.get_slice_views():
            view.interactor().AddObserver("LeftButtonPressEvent", self._in_slice_view, self.PRIORITY)
        for view in view_manager.get_threed_views():
            view.interactor().AddObserver("LeftButtonPressEvent", self._in_threed_view, self.PRIORITY)

    @property
    def interaction_node(self):
        return self.scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")

    def _set_mode(self, mode: int) -> None:
        node = self.interaction_node
        if node is None or node.GetCurrentInteractionMode() == node.Place:
            return
        if node.GetCurrentInteractionMode() != mode:
            node.SetCurrentInteractionMode(mode)

    def _in_slice_view(self, *_) -> None:
        node = self.interaction_node
        if node is not None:
            self._set_mode(node.ViewTransform if self.tool_in_hand() else node.AdjustWindowLevel)

    def _in_threed_view(self, *_) -> None:
        node = self.interaction_node
        if node is not None:
            self._set_mode(node.ViewTransform)


def show_as_outlines(segmentation_node, *, visible: bool = True, fill_opacity: float = 0.0) -> None:
    """Outlines in the slice views (fill only while painting), closed surfaces in 3-D."""
    if segmentation_node is None:
        return
    segmentation_node.CreateDefaultDisplayNodes()
    display = segmentation_node.GetDisplayNode()
    display.SetVisibility(visible)
    display.SetVisibility2DOutline(True)
    display.SetVisibility2DFill(fill_opacity > 0)
    display.SetOpacity2DFill(fill_opacity)
    display.SetSliceIntersectionThickness(OUTLINE_THICKNESS_PX)
    display.SetVisibility3D(True)
    segmentation = segmentation_node.GetSegmentation()
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        display.SetSegmentOpacity3D(segment_id, SURFACE_OPACITY.get(segment_id, 0.8))
    if segmentation.GetNumberOfSegments():
        segmentation_node.CreateClosedSurfaceRepresentation()


class ViewReadout:
    """Keeps ``bs_views`` (per slice view: letters, orientation, slice) and ``bs_window_level`` current."""

    def __init__(self, state, view_manager) -> None:
        self.state = state
        self.views = list(view_manager.get_slice_views())
        self.volume_node = None
        self._display_observation = None
        for view in self.views:
            view.get_view_node().AddObserver("ModifiedEvent", lambda *_, v=view: self._update_view(v))
        self.state.bs_views = {}
        self.state.bs_window_level = ""

    def set_volume(self, volume_node) -> None:
        if self._display_observation is not None:
            node, tag = self._display_observation
            node.RemoveObserver(tag)
            self._display_observation = None
        self.volume_node = volume_node
        display = volume_node.GetDisplayNode() if volume_node is not None else None
        if display is not None:
            tag = display.AddObserver("ModifiedEvent", lambda *_: self._update_window_level())
            self._display_observation = (display, tag)
        for view in self.views:
            self._update_view(view)
        self._update_window_level()

    def _update_view(self, view) -> None:
        annotation = view_annotation(view.get_view_node(), self.volume_node) if self.volume_node else None
        if self.state.bs_views.get(view.name) != annotation:
            with self.state:
                self.state.bs_views = {**self.state.bs_views, view.name: annotation}

    def _update_window_level(self) -> None:
        text = window_level_text(self.volume_node)
        if text != self.state.bs_window_level:
            with self.state:
                self.state.bs_window_level = text


def centre_views_on(view_manager, ras) -> None:
    """Every slice view through ``ras`` (R, A, S in mm), with the point in the middle of the view."""
    for view in view_manager.get_slice_views():
        view.get_view_node().JumpSliceByCentering(*[float(v) for v in ras])
        view.schedule_render()


def segment_centre_ras(segmentation_node, segment_id: str):
    """The centre of a segment's bounding box in RAS (mm), or None if it is empty."""
    bounds = [0.0] * 6
    segmentation_node.GetSegmentation().GetSegment(segment_id)
    segmentation_node.GetRASBounds(bounds)
    if bounds[0] > bounds[1]:
        return None
    return [(bounds[2 * i] + bounds[2 * i + 1]) / 2 for i in range(3)]


def map_legend(title: str | None, heatmap_node, note: dict | None = None) -> dict:
    """What the colour bar under the map selector says: its ends and what the map means.

    ``note`` is the map's entry in prediction.json's ``map_notes`` (the Lib's own words, shared with
    the report and Slicer); without one, a generic sentence.
    """
    if not title or heatmap_node is None:
        return {"low": "", "high": "", "meaning": ""}
    if note and note.get("meaning"):
        meaning = f"{title}: {note['meaning']}."
    elif title.startswith("Grad-CAM"):
        meaning = f"{title}: the regions behind the model's {title.split(' ', 1)[1]} call, relative within this case."
    else:
        meaning = f"{title}: where the network looked, relative within this case."
    meaning += " Not a probability."
    if note and note.get("empty"):
        meaning += " Empty: no evidence anywhere in the lesion's crop."
    display = heatmap_node.GetDisplayNode()
    low, high = display.GetWindowLevelMin(), display.GetWindowLevelMax()
    if high > low and display.GetApplyThreshold():
        hidden = (display.GetLowerThreshold() - low) / (high - low)
        meaning += f" The lowest {hidden:.0%} of the range is not shown."
    return {"low": "0 (low)", "high": "1 (high)", "meaning": meaning}
