"""The case workflow behind the panel: load -> tumour -> ROIs -> run -> overlay -> report.

Every step is the Slicer module's own (``BreastSubtypeMRML.pipeline``/``results`` on the scene, the
Lib underneath); Run is the same background ``breast-subtype predict --progress-json`` process the
Slicer module starts, so the browser stays responsive and shows its progress. This class only keeps
the trame state in step with the scene. VTK/MRML is touched on the event-loop thread only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from pathlib import Path

from trame_server.utils.asynchronous import create_task

from BreastSubtypeLib.errors import BadInputError

from . import reading
from .editing import ROI_TARGETS, SegmentEditing
from .session import SessionFolder, safe_file_name
from .uploads import check_upload

logger = logging.getLogger(__name__)

DEMO_SEED = 7
# Small enough for a quick demo on a laptop CPU, anisotropic like a clinical protocol.
DEMO_SIZE_IJK = (112, 112, 40)
DEMO_SPACING_MM = (0.8, 0.8, 1.6)
DEMO_LESION_DIAMETER_MM = 16.0

STATE_DEFAULTS = {
    "bs_message": "Load a post-contrast volume or the demo case.",
    "bs_error": "",
    "bs_case_loaded": False,
    "bs_case_name": "",
    "bs_case_serial": 0,
    "bs_placing_point": False,
    "bs_seed_ras": "",
    "bs_tumour_volume_ml": None,
    "bs_rim_mm": 3.0,
    "bs_peri_mm": 5.0,
    "bs_rois_ready": False,
    "bs_roi_rows": [],
    "bs_progress": 0,
    "bs_stage": "",
    "bs_running": False,
    "bs_result_rows": [],
    "bs_result_warnings": [],
    "bs_margin_rows": [],
    "bs_margin_legend": "",
    "bs_demo_model": False,
    "bs_map_items": [],
    "bs_map": None,
    "bs_map_opacity": 0.5,
    "bs_map_legend": {"low": "", "high": "", "meaning": ""},
    "bs_report_ready": False,
}


class CaseWorkflow:
    """One case at a time in one scene; every user action reports problems in the panel."""

    def __init__(
        self, server, slicer_app, session: SessionFolder, segment_editor_logic, *, model: str = "demo"
    ):
        self.server = server
        self.state = server.state
        self.slicer_app = slicer_app
        self.session = session
        self.segment_editor_logic = segment_editor_logic
        self.model = model
        self.volume_node = None
        self.roi_node = None
        self.point_node = None
        self.case_nodes = None  # BreastSubtypeMRML.results.CaseNodes of the last run
        self._map_notes: dict[str, dict] = {}  # map title -> its prediction.json map_notes entry
        self._process = None
        self._case_serial = 0
        self.state.update(STATE_DEFAULTS)
        self.state.change("bs_map")(self._on_map_changed)
        self.state.change("bs_map_opacity")(self._on_opacity_changed)
        self.editing = SegmentEditing(self.state, slicer_app, self._on_segments_edited)
        self.readout = None  # the views exist once the app has set its layout: attach_views()

    def attach_views(self) -> None:
        """Readouts and mouse modes for the views of the layout (called once they exist)."""
        view_manager = self.slicer_app.view_manager
        self.readout = reading.ViewReadout(self.state, view_manager)
        self.mouse_mode = reading.MouseModeFollowsView(self.scene, view_manager, self.editing.tool_in_hand)

    @property
    def scene(self):
        return self.slicer_app.scene

    @property
    def report_path(self) -> Path:
        return self.session.case_dir / "outputs" / "report.html"

    def _guarded(self, action: str, function, *args):
        """Run a user action; a bad input becomes one line in the panel instead of a server trace."""
        self.state.bs_error = ""
        try:
            return function(*args)
        except Exception as exc:  # every failure is reported in the panel
            self.state.bs_error = error_line(action, exc)
        return None

    def _require_idle(self) -> None:
        if self.state.bs_running:
            raise BadInputError("Run is in progress: wait for it to finish before loading another case.")

    # ---- loading -------------------------------------------------------------------------------------

    def load_demo_case(self) -> None:
        self._guarded("Loading the demo case", self._load_demo_case)

    def _load_demo_case(self) -> None:
        from BreastSubtypeLib.phantom import generate_phantom

        self._require_idle()
        case = generate_phantom(
            DEMO_SEED,
            size_ijk=DEMO_SIZE_IJK,
            spacing_mm=DEMO_SPACING_MM,
            lesion_diameter_mm=DEMO_LESION_DIAMETER_MM,
            case_id="demo",
        )
        self.session.new_case()
        self._show_image(case.image, "Demo phantom")
        # Open the demo at its lesion, as a radiologist scrolls to it before clicking.
        reading.centre_views_on(self.slicer_app.view_manager, case.lesion_center_ras)
        self.state.bs_message = "Demo case (synthetic phantom) loaded at its lesion: click the lesion."

    def load_upload(self, files: list[dict] | None) -> None:
        self._guarded("Loading the upload", self._load_upload, files)

    def _load_upload(self, files: list[dict] | None) -> None:
        from trame.app.file_upload import ClientFile

        from BreastSubtypeLib.imaging.io import read_image

        if not files:
            return
        self._require_idle()
        upload = ClientFile(files[0])
        # The current case stays until the new file has passed its header checks and been read.
        staged = self.session.stage_upload(upload.name, upload.content)
        try:
            check_upload(staged, self.session.image_memory_bytes)
            image = read_image(staged)
        except BaseException:
            self.session.discard_staged()
            raise
        self.session.adopt_staged(staged)
        self._show_image(image, safe_file_name(upload.name))
        self.state.bs_message = "Volume loaded: click the lesion or draw the tumour."

    def _show_image(self, image, name: str) -> None:
        from BreastSubtypeMRML.volumes import volume_node_from_sitk

        self._cancel_run()
        self.editing.set_tool("none")
        self.scene.Clear(False)
        self.state.update({k: v for k, v in STATE_DEFAULTS.items() if k not in ("bs_rim_mm", "bs_peri_mm")})
        self.roi_node = self.point_node = self.case_nodes = None
        self.volume_node = volume_node_from_sitk(self.scene, image, name)
        display = self.slicer_app.display_manager
        # Slices only: volume rendering of a whole breast MRI is an opaque block hiding the lesion; the
        # 3-D view shows the tumour and ROI surfaces instead.
        display.show_volume_in_slice_background(self.volume_node)
        display.show_volume_in_slice_foreground(None)
        display.reset_views()
        # The segment editor's segmentation holds the tumour (drawn, or grown from the click).
        self.segment_editor_logic.on_volume_changed(self.volume_node)
        self.editing.new_case(self.volume_node, self.slicer_app.segmentation_editor.active_segmentation_node)
        self.readout.set_volume(self.volume_node)
        self.state.bs_case_loaded = True
        self.state.bs_case_name = name
        self._case_serial += 1
        self.state.bs_case_serial = self._case_serial  # tells one load of the same case from the next

    # ---- reading -------------------------------------------------------------------------------------

    def apply_window_preset(self, preset: str) -> None:
        self._guarded("Setting the window", self._apply_window_preset, preset)

    def _apply_window_preset(self, preset: str) -> None:
        self._require_volume()
        reading.apply_window_preset(self.volume_node, preset)
        self._render_slice_views()

    def _show_lesion_in_3d(self) -> None:
        for view in self.slicer_app.view_manager.get_threed_views():
            view.fit_view_to_content()  # the tumour and ROI surfaces are all there is in 3-D
            view.schedule_render()

    # ---- tumour: one click or the segment editor ------------------------------------------------------

    def start_point_placement(self) -> None:
        self._guarded("Placing the lesion point", self._start_point_placement)

    def _start_point_placement(self) -> None:
        import slicer

        self._require_volume()
        if self.point_node is not None:
            self.scene.RemoveNode(self.point_node)
        self.point_node = self.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Lesion point")
        self.point_node.CreateDefaultDisplayNodes()
        self.point_node.GetDisplayNode().SetPointLabelsVisibility(False)  # a label would cover the lesion
        self.point_node.AddObserver(
            slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self._on_point_placed
        )
        self.slicer_app.markups_logic.place_node(self.point_node, persistent=False)
        self.state.bs_placing_point = True
        self.state.bs_message = "Click the centre of the lesion in a slice view."

    def _on_point_placed(self, node, _event) -> None:
        ras = [0.0, 0.0, 0.0]
        node.GetNthControlPointPositionWorld(node.GetNumberOfControlPoints() - 1, ras)
        with self.state:
            self.state.bs_placing_point = False
            self.state.bs_seed_ras = ", ".join(f"{v:.1f}" for v in ras)
            self.find_tumour_at_seed()

    def find_tumour_at_seed(self) -> None:
        self._guarded("Finding the tumour", self._find_tumour_at_seed)

    def _find_tumour_at_seed(self) -> None:
        from BreastSubtypeMRML.pipeline import one_click_tumour

        self._require_volume()
        seed_ras = _parse_ras(self.state.bs_seed_ras)
        # The views go to the point first, so a point that finds nothing is still shown.
        reading.centre_views_on(self.slicer_app.view_manager, seed_ras)
        self.editing.set_tool("none")
        if self.editing.tumour_node is not self.slicer_app.segmentation_editor.active_segmentation_node:
            self.editing.select("tumour")
        _, segment_id, result = one_click_tumour(
            self.scene, self.volume_node, seed_ras, segmentation_node=self.editing.tumour_node
        )
        # The tumour is the active segment: the brush and eraser act on it at once.
        self.editing.tumour_found(segment_id)
        reading.show_as_outlines(self.editing.tumour_node)
        self._show_lesion_in_3d()
        self.state.bs_tumour_volume_ml = round(float(result.volume_ml), 2)
        notes = "".join(f" {w}" for w in result.warnings)
        self.state.bs_message = (
            f"Tumour found ({result.volume_ml:.2f} mL): edit it if needed, then Generate ROIs.{notes}"
        )

    def _tumour_segment(self) -> tuple[object, str]:
        """The one-click tumour if there is one, else the first segment the user drew."""
        node = self.editing.tumour_node
        segmentation = node.GetSegmentation() if node is not None else None
        if segmentation is None or segmentation.GetNumberOfSegments() == 0:
            raise BadInputError("Draw the tumour or click the lesion first.")
        if segmentation.GetSegment(self.editing.tumour_segment_id) is not None:
            return node, self.editing.tumour_segment_id
        return node, segmentation.GetNthSegmentID(0)

    def _require_volume(self) -> None:
        if self.volume_node is None:
            raise BadInputError("Load a volume (or the demo case) first.")

    # ---- ROIs ----------------------------------------------------------------------------------------

    def generate_rois(self) -> None:
        self._guarded("Generating the ROIs", self._generate_rois)

    def _generate_rois(self) -> None:
        from BreastSubtypeMRML.pipeline import generate_rois

        rim_mm = _millimetres(self.state.bs_rim_mm, "The rim width")
        peri_mm = _millimetres(self.state.bs_peri_mm, "The peritumoral width")
        self._require_volume()
        segmentation_node, segment_id = self._tumour_segment()
        self.roi_node, rois = generate_rois(
            self.scene,
            self.volume_node,
            segmentation_node,
            segment_id,
            rim_mm,
            peri_mm,
            roi_segmentation_node=self.roi_node,
        )
        self._show_roi_volumes(rois.volumes_ml)
        self.state.bs_rois_ready = True
        self.editing.rois_generated(self.roi_node)
        self._show_lesion_in_3d()
        notes = "".join(f" {w}" for w in rois.warnings)
        self.state.bs_message = (
            f"ROIs ready (rim {rois.rim_mm_used:g} mm, peritumoral {peri_mm:g} mm): check them, edit "
            f"them with the brush if needed, then Run.{notes}"
        )

    def _show_roi_volumes(self, volumes_ml) -> None:
        self.state.bs_roi_rows = [
            {"name": str(name), "volume_ml": round(float(volumes_ml[name]), 2)}
            for name in (*ROI_TARGETS, "tumour")
        ]

    # ---- editing -------------------------------------------------------------------------------------

    def select_edit_target(self, target: str) -> None:
        self._guarded("Choosing what to edit", self.editing.select, target)

    def set_edit_tool(self, tool: str) -> None:
        self._guarded("Choosing the tool", self.editing.set_tool, tool)

    def undo(self) -> None:
        self._guarded("Undo", self.editing.undo)

    def redo(self) -> None:
        self._guarded("Redo", self.editing.redo)

    def _on_segments_edited(self, node) -> None:
        """After a stroke, undo or redo: the volumes as Run will export them; a word if ROIs are stale."""
        from BreastSubtypeLib.preprocessing.case import roi_result_from_labelmap
        from BreastSubtypeMRML.segments import roi_labelmap_from_segmentation, tumour_mask_from_segment
        from BreastSubtypeMRML.volumes import sitk_from_volume_node

        if self.volume_node is None:
            return
        try:
            if node is self.roi_node:
                labels = roi_labelmap_from_segmentation(self.scene, node, self.volume_node)
                image = sitk_from_volume_node(self.volume_node)
                before = self.state.bs_roi_rows
                self._show_roi_volumes(roi_result_from_labelmap(labels, image, "the edited ROIs").volumes_ml)
                if self.state.bs_roi_rows != before:
                    self.state.bs_message = "ROIs edited: Run uses them exactly as shown."
            elif node is self.editing.tumour_node and node.GetSegmentation().GetNumberOfSegments():
                _, segment_id = self._tumour_segment()
                mask = tumour_mask_from_segment(self.scene, node, segment_id, self.volume_node)
                volume_ml = round(_mask_volume_ml(mask), 2)
                if volume_ml != self.state.bs_tumour_volume_ml:
                    self.state.bs_tumour_volume_ml = volume_ml
                    if self.roi_node is not None:
                        self.state.bs_message = "Tumour edited: Generate ROIs again so the regions follow it."
        except BadInputError as exc:
            self.state.bs_error = error_line("Editing", exc)

    # ---- Run: the background predict process ---------------------------------------------------------

    def run(self) -> None:
        if not self.state.bs_running:
            create_task(self._run())

    async def _run(self) -> None:
        with self.state:
            self.state.update({"bs_error": "", "bs_running": True, "bs_progress": 0, "bs_stage": "Starting"})
        try:
            command = self._prediction_command()
            await self._run_process(command)
            with self.state:
                self._show_results()
        except Exception as exc:  # every failure is reported in the panel
            with self.state:
                self.state.bs_error = error_line("Run", exc)
        finally:
            self._process = None
            with self.state:
                self.state.bs_running = False

    def _prediction_command(self) -> list[str]:
        from BreastSubtypeMRML.pipeline import export_prediction_inputs, prediction_command

        self._require_volume()
        if self.roi_node is None:
            raise BadInputError("Generate the ROIs before running the model.")
        inputs = export_prediction_inputs(
            self.scene, self.volume_node, self.roi_node, self.session.case_dir / "inputs"
        )
        return prediction_command(
            inputs,
            self.session.case_dir / "outputs",
            model=self.model,
            rim_mm=_millimetres(self.state.bs_rim_mm, "The rim width"),
            peri_mm=_millimetres(self.state.bs_peri_mm, "The peritumoral width"),
            python=sys.executable,
        )

    async def _run_process(self, command: list[str]) -> None:
        self._process = process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        stderr_task = asyncio.ensure_future(process.stderr.read())
        async for raw in process.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if "progress" in message:
                with self.state:
                    self.state.bs_progress = round(100 * float(message["progress"]))
                    self.state.bs_stage = str(message.get("stage", ""))
        returncode = await process.wait()
        stderr = (await stderr_task).decode(errors="replace").strip()
        if returncode == 2:  # the CLI's bad-input status: its one line says what to fix
            raise BadInputError(stderr.splitlines()[-1] if stderr else "The prediction refused its input.")
        if returncode != 0:
            raise RuntimeError(stderr.splitlines()[-1] if stderr else f"predict exited with {returncode}")

    def _cancel_run(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()

    def _show_results(self) -> None:
        from BreastSubtypeLib.reports.margin_section import evidence_legend, evidence_rows
        from BreastSubtypeMRML.results import import_case_outputs
        from BreastSubtypeMRML.tables import DEMONSTRATION_WARNING, RESULT_HEADERS, result_rows

        for node in self.case_nodes.heatmap_nodes.values() if self.case_nodes else ():
            self.scene.RemoveNode(node)
        self.case_nodes = import_case_outputs(
            self.scene,
            self.session.case_dir / "outputs",
            self.volume_node,
            roi_segmentation_node=self.roi_node,
        )
        prediction = self.case_nodes.prediction
        rows = result_rows(prediction)
        # Warnings are sentences, not table cells: listed under the table (the demonstration one is
        # already the banner above it).
        self.state.bs_result_rows = [
            dict(zip(RESULT_HEADERS, row, strict=True)) for row in rows if row[0] != "Warning"
        ]
        self.state.bs_result_warnings = [
            v for f, v, _, _ in rows if f == "Warning" and v != DEMONSTRATION_WARNING
        ]
        self.state.bs_demo_model = bool((prediction.get("model") or {}).get("demonstration", True))
        # The collapsed "Margin profile evidence" panel: the report's rows and legend.
        self.state.bs_margin_rows = [
            row._asdict() for row in evidence_rows(prediction.get("margin_profile") or {})
        ]
        self.state.bs_margin_legend = evidence_legend(self.state.bs_demo_model)
        self._map_notes = _map_notes_by_title(self.session.case_dir / "outputs", prediction)
        self.state.bs_map_items = list(self.case_nodes.heatmap_nodes)
        self.state.bs_map = next(iter(self.case_nodes.heatmap_nodes), None)
        self._on_map_changed(self.state.bs_map)
        self.state.bs_report_ready = self.report_path.is_file()
        self.state.bs_progress = 100
        self.state.bs_message = "Done: review the heatmap overlay and download the report."

    # ---- heatmap overlay -----------------------------------------------------------------------------

    def _on_map_changed(self, bs_map=None, **_) -> None:
        from BreastSubtypeMRML.heatmaps import show_overlay

        if self.volume_node is None or self.case_nodes is None:
            return
        node = self.case_nodes.heatmap_nodes.get(bs_map) if bs_map else None
        show_overlay(self.scene, self.volume_node, node, _opacity(self.state.bs_map_opacity))
        self.state.bs_map_legend = reading.map_legend(bs_map, node, self._map_notes.get(bs_map))
        self._render_slice_views()

    def _on_opacity_changed(self, bs_map_opacity=0.5, **_) -> None:
        for view in self.slicer_app.view_manager.get_slice_views():
            view.set_foreground_opacity(_opacity(bs_map_opacity))
        self._render_slice_views()

    def _render_slice_views(self) -> None:
        for view in self.slicer_app.view_manager.get_slice_views():
            view.schedule_render()

    # ---- report --------------------------------------------------------------------------------------

    def report_bytes(self) -> bytes:
        if not self.state.bs_report_ready:
            raise BadInputError("Run the model before downloading the report.")
        return self.session.resolve("outputs/report.html").read_bytes()


# An absolute path in a message (server folders, the Python install): only its last part is kept.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/-])(?:/[^\s'\",;:()]+)+")


def scrub_paths(text: str) -> str:
    """Server paths reduced to their file name, so no folder layout of the server reaches the browser.

    >>> scrub_paths("The image /tmp/breast-subtype-web-x/case-001/a.nrrd cannot be read.")
    'The image a.nrrd cannot be read.'
    """
    return _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "/", text)


def error_line(action: str, exc: BaseException) -> str:
    """What the panel shows: a bad input's own message in full, or an internal error named, never a trace."""
    if isinstance(exc, BadInputError):
        return scrub_paths(" ".join(str(exc).split()))
    logger.error("%s failed", action, exc_info=exc)
    detail = scrub_paths(" ".join(str(exc).split()))
    return f"{action} failed ({type(exc).__name__}{': ' + detail if detail else ''}); the server log has the details."


def _map_notes_by_title(out_dir: Path, prediction: dict) -> dict[str, dict]:
    """prediction.json's ``map_notes`` (keyed by map name) under the titles the map selector shows."""
    from BreastSubtypeLib.inference.outputs import map_file_name
    from BreastSubtypeMRML.results import heatmap_files

    by_file = {map_file_name(name): note for name, note in (prediction.get("map_notes") or {}).items()}
    return {
        title: by_file[path.name] for title, path in heatmap_files(out_dir).items() if path.name in by_file
    }


def _mask_volume_ml(mask) -> float:
    import numpy as np
    import SimpleITK as sitk

    return (
        float(np.count_nonzero(sitk.GetArrayViewFromImage(mask))) * float(np.prod(mask.GetSpacing())) / 1000.0
    )


def _millimetres(value, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise BadInputError(
            f"{what} must be a positive number of mm, not '{'' if value is None else value}'."
        )
    return number


def _opacity(value) -> float:
    return min(max(float(value), 0.0), 1.0)


def _parse_ras(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in str(text).replace(";", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise BadInputError(f"The lesion point must be three numbers 'R, A, S' in mm, not '{text}'.")
    return values
