"""Editing the tumour and its regions by hand: brush and eraser on one segment, undo and redo.

Trame-slicer's segmentation editor does the painting (Slicer's segment editor logic); this class only
chooses what it paints on: the tumour segmentation (one-click or drawn) or the ROI segmentation
(core, rim, peritumoral, painted over each other so they never overlap). The ROI segmentation is what
Run exports with ``--rois``, so every stroke reaches the model. Volumes in the panel are recounted
after each stroke from the same labelmap export Run uses.
"""

from __future__ import annotations

import asyncio

from BreastSubtypeLib.errors import BadInputError

from .reading import EDIT_FILL_OPACITY, show_as_outlines

TUMOUR = "tumour"
ROI_TARGETS = ("core", "rim", "peritumoral")
EDIT_TARGETS = {TUMOUR: "Tumour", "core": "Core", "rim": "Rim", "peritumoral": "Peritumoral"}
TOOLS = ("none", "brush", "eraser")
DEFAULT_BRUSH_MM = 4.0

STATE_DEFAULTS = {
    "bs_edit_target": TUMOUR,
    "bs_edit_tool": "none",
    "bs_brush_mm": DEFAULT_BRUSH_MM,
    "bs_can_undo": False,
    "bs_can_redo": False,
    "bs_rois_visible": True,
}


class SegmentEditing:
    """Which segment the brush and eraser act on, and the undo/redo of those strokes."""

    def __init__(self, state, slicer_app, on_segments_edited) -> None:
        self.state = state
        self.slicer_app = slicer_app
        self.editor = slicer_app.segmentation_editor
        self.on_segments_edited = on_segments_edited  # (segmentation node) -> None
        self.volume_node = None
        self.tumour_node = None
        self.tumour_segment_id = TUMOUR
        self.roi_node = None
        self.state.update(STATE_DEFAULTS)
        # Surfaces of the segmentation being edited stay in the 3-D view (the editor would drop them).
        self.editor.set_surface_representation_enabled(True)
        undo_stack = self.editor.undo_stack
        undo_stack.can_undo_changed.connect(self._on_undo_changed)
        undo_stack.can_redo_changed.connect(self._on_undo_changed)
        # Every stroke, undo and redo moves the undo stack: recount then, once the labelmap has changed.
        undo_stack.index_changed.connect(self._schedule_recount)
        self.state.change("bs_brush_mm")(self._on_brush_changed)
        self.state.change("bs_rois_visible")(self._on_rois_visible_changed)

    # ---- what is edited -------------------------------------------------------------------------------

    def new_case(self, volume_node, tumour_node) -> None:
        self.volume_node, self.tumour_node, self.roi_node = volume_node, tumour_node, None
        self.tumour_segment_id = TUMOUR
        self.state.update({k: v for k, v in STATE_DEFAULTS.items() if k != "bs_brush_mm"})

    def tumour_found(self, segment_id: str) -> None:
        """After the one-click: the tumour is the active segment, ready for the brush."""
        self.tumour_segment_id = segment_id
        self.select(TUMOUR)

    def rois_generated(self, roi_node) -> None:
        self.roi_node = roi_node
        # The tumour is the union of core and rim: from now on the ROI outlines show it.
        if self.state.bs_edit_target == TUMOUR:
            self.set_tool("none")
        else:
            self.select(self.state.bs_edit_target)
        self._show_edited()

    def select(self, target: str) -> None:
        if target not in EDIT_TARGETS:
            raise BadInputError(f"Nothing to edit called '{target}'.")
        if target in ROI_TARGETS and self.roi_node is None:
            raise BadInputError(f"Generate the ROIs before editing the {target}.")
        if self.volume_node is None or self.tumour_node is None:
            raise BadInputError("Load a volume (or the demo case) first.")
        node = self.roi_node if target in ROI_TARGETS else self.tumour_node
        segment_id = target if target in ROI_TARGETS else self.tumour_segment_id
        if self.editor.active_segmentation_node is not node:
            self.editor.set_active_segmentation(node, self.volume_node)  # clears the undo history
        if node.GetSegmentation().GetSegment(segment_id) is None:
            self.editor.add_empty_segment(segment_id=segment_id, segment_name=EDIT_TARGETS[target])
        self.editor.set_active_segment_id(segment_id)
        self.state.bs_edit_target = target
        self._show_edited()
        self._on_undo_changed()

    def _show_edited(self) -> None:
        """Outlines of the ROIs (or of the tumour before there are ROIs), hidden by the toggle; the
        segmentation under the brush always shows, with a faint fill."""
        edited = self.editor.active_segmentation_node if self.tool_in_hand() else None
        wanted = bool(self.state.bs_rois_visible)
        for node, shown in ((self.roi_node, wanted), (self.tumour_node, wanted and self.roi_node is None)):
            if node is not None:
                fill = EDIT_FILL_OPACITY if node is edited else 0.0
                show_as_outlines(node, visible=shown or node is edited, fill_opacity=fill)

    # ---- tools ----------------------------------------------------------------------------------------

    def set_tool(self, tool: str) -> None:
        from trame_slicer.segmentation import SegmentationEffectErase, SegmentationEffectPaint

        if tool not in TOOLS:
            raise BadInputError(f"Unknown tool '{tool}'.")
        if tool == "none":
            self.editor.deactivate_effect()
        else:
            self.select(self.state.bs_edit_target)
            effect_type = SegmentationEffectPaint if tool == "brush" else SegmentationEffectErase
            effect = self.editor.set_active_effect_type(effect_type)
            self._set_brush_diameter(effect)
        self.state.bs_edit_tool = tool
        self._show_edited()

    def tool_in_hand(self) -> bool:
        from trame_slicer.segmentation import SegmentationEffectNoTool

        return self.editor.active_effect_name not in ("", SegmentationEffectNoTool.get_effect_name())

    def _set_brush_diameter(self, effect) -> None:
        from trame_slicer.segmentation import BrushDiameterMode

        diameter_mm = _brush_mm(self.state.bs_brush_mm)
        if effect is not None and hasattr(effect, "set_brush_diameter"):
            effect.set_brush_diameter(diameter_mm, BrushDiameterMode.Absolute)

    def _on_brush_changed(self, **_) -> None:
        if self.tool_in_hand():
            self._set_brush_diameter(self.editor.active_effect)

    def _on_rois_visible_changed(self, **_) -> None:
        self._show_edited()

    # ---- undo / redo ----------------------------------------------------------------------------------

    def undo(self) -> None:
        self.editor.undo_stack.undo()

    def redo(self) -> None:
        self.editor.undo_stack.redo()

    def _on_undo_changed(self, *_) -> None:
        stack = self.editor.undo_stack
        with self.state:
            self.state.bs_can_undo = stack.can_undo()
            self.state.bs_can_redo = stack.can_redo()

    def _schedule_recount(self, *_) -> None:
        asyncio.get_event_loop().call_soon(self._recount)

    def _recount(self) -> None:
        node = self.editor.active_segmentation_node
        if node is not None and node in (self.tumour_node, self.roi_node):
            with self.state:
                self.on_segments_edited(node)


def _brush_mm(value) -> float:
    try:
        diameter = float(value)
    except (TypeError, ValueError):
        diameter = DEFAULT_BRUSH_MM
    return min(max(diameter, 0.5), 50.0)
