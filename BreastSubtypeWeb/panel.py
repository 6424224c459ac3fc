"""The BreastSubtype drawer: case, tumour, ROIs, Run, results, heatmap and report.

Widgets carry stable ``data-testid`` attributes (the browser tests and screen readers rely on them)
and bind to the ``bs_*`` state kept by :class:`BreastSubtypeWeb.workflow.CaseWorkflow`.
"""

from __future__ import annotations

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from .uploads import UPLOAD_SUFFIXES
from .workflow import CaseWorkflow

DEMO_WARNING = (
    "Demonstration model trained on synthetic phantoms: not for clinical use, "
    "and its numbers say nothing about real patients."
)


def _testid(name: str) -> dict:
    return {"raw_attrs": [f'data-testid="{name}"']}


class BreastSubtypePanel(html.Div):
    def __init__(self, workflow: CaseWorkflow, **kwargs) -> None:
        super().__init__(
            classes="pa-3 d-flex flex-column ga-3", style="height: 100%; overflow-y: auto;", **kwargs
        )
        self.workflow = workflow
        ctrl = self.server.controller
        ctrl.bs_load_demo = workflow.load_demo_case
        ctrl.bs_upload = workflow.load_upload
        ctrl.bs_place_point = workflow.start_point_placement
        ctrl.bs_find_tumour = workflow.find_tumour_at_seed
        ctrl.bs_generate_rois = workflow.generate_rois
        ctrl.bs_run = workflow.run
        session = workflow.session
        with self:
            self._case_section(session.max_upload_bytes, session.max_upload_mb)
            self._tumour_section()
            self._roi_section()
            self._run_section()
            self._results_section()
            self._heatmap_section()

    def _case_section(self, max_bytes: int, max_mb: float) -> None:
        html.Div("1. Case", classes="text-subtitle-2")
        v3.VBtn(
            "Load demo case",
            click=self.server.controller.bs_load_demo,
            disabled=("bs_running",),
            block=True,
            prepend_icon="mdi-flask-outline",
            **_testid("load-demo"),
        )
        # The size is checked in the browser before sending and again on the server.
        v3.VFileInput(
            label=f"Upload a volume ({max_mb:g} MB max)",
            accept=",".join(UPLOAD_SUFFIXES),
            density="compact",
            hide_details=True,
            disabled=("bs_running",),  # a new case during Run would lose the run
            prepend_icon="mdi-file-upload",
            change=(
                f"window.breast_subtype_upload($event.target.files, {max_bytes}, '{max_mb:g}', "
                "'bs_upload_trigger').then((message) => { if (message) bs_error = message; })"
            ),
            **_testid("upload"),
        )
        self.server.trigger("bs_upload_trigger")(self.workflow.load_upload)
        html.Div(
            "{{ bs_case_name }}", v_if=("bs_case_loaded",), classes="text-caption", **_testid("case-name")
        )

    def _tumour_section(self) -> None:
        html.Div("2. Tumour", classes="text-subtitle-2")
        v3.VBtn(
            "Click the lesion",
            click=self.server.controller.bs_place_point,
            disabled=("!bs_case_loaded || bs_running",),
            color=("bs_placing_point ? 'primary' : undefined",),
            block=True,
            prepend_icon="mdi-target",
            **_testid("place-point"),
        )
        with html.Div(classes="d-flex ga-2 align-center"):
            v3.VTextField(
                v_model=("bs_seed_ras",),
                label="Lesion point R, A, S (mm)",
                density="compact",
                hide_details=True,
                **_testid("seed-ras"),
            )
            v3.VBtn(
                "Find",
                click=self.server.controller.bs_find_tumour,
                disabled=("!bs_case_loaded || !bs_seed_ras",),
                **_testid("find-tumour"),
            )
        html.Div(
            "Or draw / erase it with the brush tool on the left.",
            classes="text-caption text-medium-emphasis",
        )
        html.Div(
            "Tumour: {{ bs_tumour_volume_ml }} mL",
            v_if=("bs_tumour_volume_ml !== null",),
            classes="text-caption",
            **_testid("tumour-volume"),
        )

    def _roi_section(self) -> None:
        html.Div("3. Regions of interest", classes="text-subtitle-2")
        with html.Div(classes="d-flex ga-2"):
            v3.VTextField(
                v_model_number=("bs_rim_mm",),
                type="number",
                step=0.5,
                min=0.5,
                label="Rim (mm)",
                density="compact",
                hide_details=True,
                **_testid("rim-mm"),
            )
            v3.VTextField(
                v_model_number=("bs_peri_mm",),
                type="number",
                step=0.5,
                min=0.5,
                label="Peritumoral (mm)",
                density="compact",
                hide_details=True,
                **_testid("peri-mm"),
            )
        v3.VBtn(
            "Generate ROIs",
            click=self.server.controller.bs_generate_rois,
            disabled=("!bs_case_loaded || bs_running",),
            block=True,
            **_testid("generate-rois"),
        )
        with html.Table(v_if=("bs_rois_ready",), classes="text-caption", **_testid("roi-table")):
            with html.Tr(v_for="row in bs_roi_rows", key="row.name"):
                html.Td("{{ row.name }}")
                html.Td("{{ row.volume_ml }} mL", classes="text-right")

    def _run_section(self) -> None:
        html.Div("4. Prediction", classes="text-subtitle-2")
        v3.VBtn(
            "Run",
            click=self.server.controller.bs_run,
            disabled=("!bs_case_loaded || bs_running",),
            loading=("bs_running",),
            color="primary",
            block=True,
            prepend_icon="mdi-play",
            **_testid("run"),
        )
        v3.VProgressLinear(
            v_if=("bs_running || bs_progress > 0",),
            model_value=("bs_progress",),
            height=14,
            **_testid("progress"),
        )
        html.Div("{{ bs_stage }}", v_if=("bs_running",), classes="text-caption")
        html.Div("{{ bs_message }}", classes="text-caption", **_testid("message"))
        v3.VAlert(
            v_if=("bs_error",),
            text=("bs_error",),
            type="error",
            density="compact",
            **_testid("error"),
        )

    def _results_section(self) -> None:
        with html.Div(
            v_if=("bs_result_rows.length",), classes="d-flex flex-column ga-2", **_testid("results")
        ):
            v3.VAlert(
                v_if=("bs_demo_model",),
                text=DEMO_WARNING,
                type="warning",
                density="compact",
                classes="text-body-2",
                style="flex: 0 0 auto; height: auto; overflow: visible",  # was squeezed, text clipped
                **_testid("demo-warning"),
            )
            # The rows are BreastSubtypeMRML.tables.result_rows: the Slicer table's words and numbers.
            with html.Table(classes="text-caption", style="width: 100%", **_testid("result-table")):
                with html.Tr():
                    for title in ("Finding", "Value", "Threshold", "Call"):
                        html.Th(title, classes="text-left pr-2")
                with html.Tr(v_for="(row, i) in bs_result_rows", key="i", **_testid("result-row")):
                    html.Td("{{ row.finding }}", classes="pr-2")
                    html.Td("{{ row.value }}", classes="pr-2")
                    html.Td("{{ row.threshold }}", classes="pr-2")
                    html.Td("{{ row.call }}")
            v3.VBtn(
                "Download report",
                v_if=("bs_report_ready",),
                prepend_icon="mdi-file-download",
                block=True,
                click="utils.download('report.html', trigger('bs_report_trigger'), 'text/html')",
                **_testid("download-report"),
            )
        self.server.trigger("bs_report_trigger")(self._report_attachment)

    def _report_attachment(self):
        return self.server.protocol.addAttachment(self.workflow.report_bytes())

    def _heatmap_section(self) -> None:
        with html.Div(v_if=("bs_map_items.length",), classes="d-flex flex-column ga-2", **_testid("heatmap")):
            html.Div("Heatmap overlay", classes="text-subtitle-2")
            v3.VSelect(
                v_model=("bs_map",),
                items=("bs_map_items",),
                label="Map",
                density="compact",
                hide_details=True,
                **_testid("map-select"),
            )
            v3.VSlider(
                v_model=("bs_map_opacity",),
                min=0,
                max=1,
                step=0.05,
                label="Opacity",
                density="compact",
                hide_details=True,
                **_testid("map-opacity"),
            )
