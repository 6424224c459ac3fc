"""The left drawer, the radiologist's steps: case, tumour, regions, editing, Run.

Widgets carry stable ``data-testid`` attributes (the browser tests and screen readers rely on them)
and bind to the ``bs_*`` state kept by :class:`BreastSubtypeWeb.workflow.CaseWorkflow`. The status line
and any error sit at the top, in full, where they are seen whatever the step.
"""

from __future__ import annotations

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from .editing import EDIT_TARGETS
from .uploads import UPLOAD_SUFFIXES
from .workflow import CaseWorkflow


def testid(name: str) -> dict:
    return {"raw_attrs": [f'data-testid="{name}"']}


def section_title(text: str) -> None:
    html.Div(text, classes="text-subtitle-2 mt-1")


def compact_slider(state: str, label: str, low: float, high: float, step: float, name: str, **kwargs) -> None:
    v3.VSlider(
        v_model=(state,),
        min=low,
        max=high,
        step=step,
        label=label,
        density="compact",
        hide_details=True,
        **kwargs,
        **testid(name),
    )


class BreastSubtypePanel(html.Div):
    def __init__(self, workflow: CaseWorkflow, **kwargs) -> None:
        super().__init__(
            classes="pa-3 d-flex flex-column ga-2", style="height: 100%; overflow-y: auto;", **kwargs
        )
        self.workflow = workflow
        ctrl = self.server.controller
        ctrl.bs_load_demo = workflow.load_demo_case
        ctrl.bs_place_point = workflow.start_point_placement
        ctrl.bs_find_tumour = workflow.find_tumour_at_seed
        ctrl.bs_generate_rois = workflow.generate_rois
        ctrl.bs_run = workflow.run
        ctrl.bs_edit_target = workflow.select_edit_target
        ctrl.bs_edit_tool = workflow.set_edit_tool
        ctrl.bs_undo = workflow.undo
        ctrl.bs_redo = workflow.redo
        session = workflow.session
        with self:
            self._status()
            self._case_section(session.max_upload_bytes, session.max_upload_mb)
            self._tumour_section()
            self._roi_section()
            self._edit_section()
            self._run_section()

    def _status(self) -> None:
        html.Div("{{ bs_message }}", classes="text-body-2", **testid("message"))
        # The whole message, wrapped: an error the user cannot read in full cannot be fixed.
        v3.VAlert(
            v_if=("bs_error",),
            text=("bs_error",),
            type="error",
            density="compact",
            classes="text-body-2",
            style="flex: 0 0 auto; height: auto; overflow: visible; white-space: normal; word-break: break-word;",
            **testid("error"),
        )

    def _case_section(self, max_bytes: int, max_mb: float) -> None:
        section_title("1. Case")
        v3.VBtn(
            "Load demo case",
            click=self.server.controller.bs_load_demo,
            disabled=("bs_running",),
            block=True,
            density="comfortable",
            prepend_icon="mdi-flask-outline",
            **testid("load-demo"),
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
            **testid("upload"),
        )
        self.server.trigger("bs_upload_trigger")(self.workflow.load_upload)
        html.Div(
            "{{ bs_case_name }}",
            v_if=("bs_case_loaded",),
            classes="text-caption",
            raw_attrs=['data-testid="case-name"', ':data-case="bs_case_serial"'],
        )

    def _tumour_section(self) -> None:
        section_title("2. Tumour")
        v3.VBtn(
            "Click the lesion",
            click=self.server.controller.bs_place_point,
            disabled=("!bs_case_loaded || bs_running",),
            color=("bs_placing_point ? 'primary' : undefined",),
            block=True,
            density="comfortable",
            prepend_icon="mdi-target",
            **testid("place-point"),
        )
        with html.Div(classes="d-flex ga-2 align-center"):
            v3.VTextField(
                v_model=("bs_seed_ras",),
                label="Lesion point R, A, S (mm)",
                density="compact",
                hide_details=True,
                **testid("seed-ras"),
            )
            v3.VBtn(
                "Find",
                click=self.server.controller.bs_find_tumour,
                disabled=("!bs_case_loaded || !bs_seed_ras || bs_running",),
                **testid("find-tumour"),
            )
        html.Div(
            "Tumour: {{ bs_tumour_volume_ml }} mL",
            v_if=("bs_tumour_volume_ml !== null",),
            classes="text-caption",
            **testid("tumour-volume"),
        )

    def _roi_section(self) -> None:
        section_title("3. Regions of interest")
        with html.Div(classes="d-flex ga-2"):
            for key, label, name in (
                ("bs_rim_mm", "Rim (mm)", "rim-mm"),
                ("bs_peri_mm", "Peritumoral (mm)", "peri-mm"),
            ):
                v3.VTextField(
                    v_model=(key,),
                    type="number",
                    step=0.5,
                    min=0.5,
                    label=label,
                    density="compact",
                    hide_details=True,
                    **testid(name),
                )
        v3.VBtn(
            "Generate ROIs",
            click=self.server.controller.bs_generate_rois,
            disabled=("!bs_case_loaded || bs_running",),
            block=True,
            density="comfortable",
            **testid("generate-rois"),
        )
        with html.Table(v_if=("bs_rois_ready",), classes="text-caption", **testid("roi-table")):
            with html.Tr(v_for="row in bs_roi_rows", key="row.name"):
                html.Td("{{ row.name }}")
                html.Td("{{ row.volume_ml.toFixed(2) }} mL", classes="text-right", **testid("roi-volume"))

    def _edit_section(self) -> None:
        section_title("4. Edit by hand")
        ctrl = self.server.controller
        with v3.VBtnToggle(
            model_value=("bs_edit_target",),
            update_modelValue=(ctrl.bs_edit_target, "[$event]"),
            mandatory=True,
            density="compact",
            divided=True,
            variant="outlined",
            disabled=("!bs_case_loaded || bs_running",),
            classes="flex-wrap",
            style="height: auto;",
            **testid("edit-target"),
        ):
            for target, label in EDIT_TARGETS.items():
                v3.VBtn(
                    label,
                    value=target,
                    size="small",
                    disabled=(f"{'false' if target == 'tumour' else '!bs_rois_ready'}",),
                    **testid(f"edit-{target}"),
                )
        with html.Div(classes="d-flex ga-2 align-center"):
            with v3.VBtnToggle(
                model_value=("bs_edit_tool",),
                update_modelValue=(ctrl.bs_edit_tool, "[$event]"),
                mandatory=True,
                density="compact",
                divided=True,
                variant="outlined",
                disabled=("!bs_case_loaded || bs_running",),
                **testid("edit-tool"),
            ):
                for tool, icon, title in (
                    ("none", "mdi-cursor-default", "No tool: drag for window/level"),
                    ("brush", "mdi-brush", "Brush"),
                    ("eraser", "mdi-eraser", "Eraser"),
                ):
                    v3.VBtn(icon=icon, value=tool, size="small", title=title, **testid(f"tool-{tool}"))
            for action, icon, handler in (
                ("undo", "mdi-undo", ctrl.bs_undo),
                ("redo", "mdi-redo", ctrl.bs_redo),
            ):
                v3.VBtn(
                    icon=icon,
                    size="small",
                    variant="text",
                    title=action.capitalize(),
                    click=handler,
                    disabled=(f"!bs_can_{action} || bs_running",),
                    **testid(action),
                )
        compact_slider("bs_brush_mm", "Brush (mm)", 1, 20, 0.5, "brush-mm", thumb_label=True)
        v3.VSwitch(
            v_model=("bs_rois_visible",),
            label="Show outlines",
            color="primary",
            density="compact",
            hide_details=True,
            **testid("outlines-visible"),
        )

    def _run_section(self) -> None:
        section_title("5. Prediction")
        v3.VBtn(
            "Run",
            click=self.server.controller.bs_run,
            disabled=("!bs_case_loaded || bs_running",),
            loading=("bs_running",),
            color="primary",
            block=True,
            prepend_icon="mdi-play",
            **testid("run"),
        )
        v3.VProgressLinear(
            v_if=("bs_running || bs_progress > 0",),
            model_value=("bs_progress",),
            height=14,
            **testid("progress"),
        )
        html.Div("{{ bs_stage }}", v_if=("bs_running",), classes="text-caption")
