"""Text laid over each slice view: patient-direction letters at the edges, and in the corner the
orientation, slice number, position along the normal and window/level.

Built into trame-slicer's per-view UI hook (``register_rca_factories(slice_view_ui_f=...)``) beside its
own gutter and slice slider; the numbers come from :class:`BreastSubtypeWeb.reading.ViewReadout`.
The overlay ignores the mouse, so clicks and drags still reach the view.
"""

from __future__ import annotations

from trame.widgets import html

_TEXT = (
    "position: absolute; color: #ffe082; font: 600 13px/1.2 sans-serif; "
    "text-shadow: 0 0 3px #000, 0 0 2px #000; pointer-events: none; user-select: none;"
)
_EDGES = {
    "top": "top: 6px; left: 50%; transform: translateX(-50%);",
    "bottom": "bottom: 34px; left: 50%; transform: translateX(-50%);",  # above the slice slider
    "left": "top: 50%; left: 8px; transform: translateY(-50%);",
    "right": "top: 50%; right: 8px; transform: translateY(-50%);",
}


def slice_view_overlay(server, view_id: str, view) -> None:
    """trame-slicer's gutter and slider for this view, then our letters and readout on top."""
    from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui

    create_vertical_slice_view_gutter_ui(server, view_id, view)
    name = view.name  # "Red", "Green", "Yellow"
    views = f"bs_views['{name}']"
    with html.Div(v_if=(views,), style="position: absolute; inset: 0; pointer-events: none;"):
        for edge, where in _EDGES.items():
            html.Div(
                f"{{{{ {views}.{edge} }}}}",
                style=_TEXT + where,
                raw_attrs=[f'data-testid="orientation-{name}-{edge}"'],
            )
        html.Div(
            f"{{{{ {views}.orientation }}}} · {{{{ {views}.slice }}}} · {{{{ {views}.position }}}}",
            style=_TEXT + "top: 26px; right: 8px; text-align: right;",  # under the top letter
            raw_attrs=[f'data-testid="slice-readout-{name}"'],
        )
        html.Div(
            "{{ bs_window_level }}",
            style=_TEXT + "bottom: 34px; right: 8px;",
            raw_attrs=[f'data-testid="window-level-{name}"'],
        )
