"""The right drawer: display controls, then the results, the heatmap and its colour bar, the report.

It sits beside the views so that at 1600 x 1000 the whole result (warning, table, map legend, report
button) is read without scrolling.
"""

from __future__ import annotations

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from BreastSubtypeLib.reports.colormaps import CONTROL_POINTS_RGB
from BreastSubtypeLib.reports.margin_section import PANEL_TITLE
from BreastSubtypeMRML.tables import EVIDENCE_HEADERS, RESULT_HEADERS

from .panel import compact_slider, section_title, testid
from .reading import WINDOW_PRESETS
from .workflow import CaseWorkflow

DEMO_WARNING = (
    "Demonstration model trained on synthetic phantoms: not for clinical use, "
    "and its numbers say nothing about real patients."
)


def css_gradient(colormap: str = "inferno") -> str:
    """The colour map as a CSS gradient, from the same control points as the overlay's colour table."""
    points = CONTROL_POINTS_RGB[colormap]
    stops = ", ".join(
        f"rgb({r}, {g}, {b}) {100 * i / (len(points) - 1):.1f}%" for i, (r, g, b) in enumerate(points)
    )
    return f"linear-gradient(to right, {stops})"


def text_table(
    name: str, rows_state: str, columns: dict[str, str], *, font_px: int, nowrap: tuple[str, ...] = ()
) -> None:
    """A table of text: ``columns`` maps each row field to its header; one row per item of the state
    list ``rows_state``; the first column (and those in ``nowrap``) never wraps."""
    fields = list(columns)
    with html.Table(style=f"width: 100%; font-size: {font_px}px;", **testid(f"{name}-table")):
        with html.Tr():
            for title in columns.values():
                html.Th(title, classes="text-left pr-2")
        with html.Tr(v_for=f"(row, i) in {rows_state}", key="i", **testid(f"{name}-row")):
            for index, field in enumerate(fields):
                cell = {"classes": "pr-2"} if index < len(fields) - 1 else {}
                if index == 0 or field in nowrap:
                    cell["style"] = "white-space: nowrap;"
                html.Td(f"{{{{ row.{field} }}}}", **cell)


class ResultsPanel(html.Div):
    def __init__(self, workflow: CaseWorkflow, **kwargs) -> None:
        super().__init__(
            classes="pa-3 d-flex flex-column ga-2", style="height: 100%; overflow-y: auto;", **kwargs
        )
        self.workflow = workflow
        self.server.controller.bs_window_preset = workflow.apply_window_preset
        with self:
            self._display_section()
            self._results_section()
            self._heatmap_section()
        self.server.trigger("bs_report_trigger")(self._report_attachment)

    def _display_section(self) -> None:
        section_title("Display")
        with html.Div(classes="d-flex ga-1 flex-wrap", **testid("window-presets")):
            for preset, label in WINDOW_PRESETS.items():
                v3.VBtn(
                    label,
                    size="small",
                    variant="tonal",
                    disabled=("!bs_case_loaded",),
                    click=(self.server.controller.bs_window_preset, f"['{preset}']"),
                    **testid(f"window-{preset}"),
                )
        html.Div(
            "Drag with the left button in a slice view (no tool selected) to change window and level.",
            classes="text-caption text-medium-emphasis",
        )

    def _results_section(self) -> None:
        section_title("Results")
        html.Div(
            "Results appear here after Run.",
            v_if=("!bs_result_rows.length",),
            classes="text-caption text-medium-emphasis",
        )
        with html.Div(
            v_if=("bs_result_rows.length",), classes="d-flex flex-column ga-2", **testid("results")
        ):
            v3.VAlert(
                v_if=("bs_demo_model",),
                text=DEMO_WARNING,
                type="warning",
                density="compact",
                classes="text-body-2",
                style="flex: 0 0 auto; height: auto; overflow: visible",
                **testid("demo-warning"),
            )
            # The rows are BreastSubtypeMRML.tables.result_rows: the Slicer table's words and numbers.
            text_table("result", "bs_result_rows", RESULT_HEADERS, font_px=13)
            html.Div(
                "{{ warning }}",
                v_for="(warning, i) in bs_result_warnings",
                key="i",
                classes="text-caption text-warning",
                **testid("result-warning"),
            )
            v3.VBtn(
                "Download report",
                v_if=("bs_report_ready",),
                prepend_icon="mdi-file-download",
                block=True,
                density="comfortable",
                click="utils.download('report.html', trigger('bs_report_trigger'), 'text/html')",
                **testid("download-report"),
            )
            self._margin_evidence()

    def _margin_evidence(self) -> None:
        """Each call's strongest margin numbers (reports.margin_section.evidence_rows, the report's
        words): closed by default, one summary line, so the colour bar stays in view at 1600 x 1000."""
        with html.Details(v_if=("bs_margin_rows.length",), **testid("margin-evidence")):
            html.Summary(
                PANEL_TITLE,
                classes="text-subtitle-2",
                style="cursor: pointer;",
                **testid("margin-evidence-title"),
            )
            text_table(
                "margin-evidence", "bs_margin_rows", EVIDENCE_HEADERS, font_px=12, nowrap=("evidence",)
            )
            html.Div(
                "{{ bs_margin_legend }}",
                classes="text-caption text-medium-emphasis",
                **testid("margin-evidence-legend"),
            )

    def _report_attachment(self):
        return self.server.protocol.addAttachment(self.workflow.report_bytes())

    def _heatmap_section(self) -> None:
        with html.Div(v_if=("bs_map_items.length",), classes="d-flex flex-column ga-2", **testid("heatmap")):
            section_title("Heatmap overlay")
            v3.VSelect(
                v_model=("bs_map",),
                items=("bs_map_items",),
                label="Map",
                density="compact",
                hide_details=True,
                **testid("map-select"),
            )
            compact_slider("bs_map_opacity", "Opacity", 0, 1, 0.05, "map-opacity")
            with html.Div(**testid("colour-bar")):
                html.Div(style=f"height: 14px; border-radius: 2px; background: {css_gradient()};")
                with html.Div(classes="d-flex text-caption"):
                    html.Span("{{ bs_map_legend.low }}")
                    v3.VSpacer()
                    html.Span("{{ bs_map_legend.high }}")
                html.Div("{{ bs_map_legend.meaning }}", classes="text-caption", **testid("map-meaning"))
