"""The case workflow behind the panel: load -> tumour -> ROIs -> run -> overlay -> report.

Each step calls the one implementation in ``BreastSubtypeLib`` (images as ``sitk.Image`` with their
geometry) and ``BreastSubtypeMRML`` (nodes, segments, heatmaps); this class only keeps the trame
state in step with it. VTK/MRML is touched on the server's event-loop thread only; the prediction
itself runs in a worker thread so progress reaches the browser while it works.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from trame_server.utils.asynchronous import create_task

from BreastSubtypeLib.errors import BadInputError

from .session import SessionFolder, safe_file_name

logger = logging.getLogger(__name__)

DEMO_SEED = 7
# Small enough for a quick demo on a laptop CPU, anisotropic like a clinical protocol.
DEMO_SIZE_IJK = (112, 112, 48)
DEMO_SPACING_MM = (0.8, 0.8, 1.6)
DEMO_DIRECTION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)

STATE_DEFAULTS = {
    "bs_busy": False,
    "bs_message": "Load a post-contrast volume or the demo case.",
    "bs_error": "",
    "bs_case_loaded": False,
    "bs_case_name": "",
    "bs_placing_point": False,
    "bs_seed_ras": "",
    "bs_tumour_ready": False,
    "bs_tumour_volume_ml": None,
    "bs_rim_mm": 3.0,
    "bs_peri_mm": 5.0,
    "bs_rois_ready": False,
    "bs_roi_rows": [],
    "bs_progress": 0,
    "bs_stage": "",
    "bs_running": False,
    "bs_result": None,
    "bs_map_items": [],
    "bs_map": None,
    "bs_map_opacity": 0.5,
    "bs_report_ready": False,
}


class CaseWorkflow:
    """One case at a time in one scene; every user action goes through :meth:`_guarded`."""

    def __init__(self, server, slicer_app, session: SessionFolder, segment_editor_logic) -> None:
        self.server = server
        self.state = server.state
        self.slicer_app = slicer_app
        self.session = session
        self.segment_editor_logic = segment_editor_logic
        self.image = None  # sitk.Image of the loaded volume, LPS
        self.volume_node = None
        self.segmentation_node = None
        self.tumour_segment_id = None
        self.point_node = None
        self.rois = None  # RoiResult
        self.prediction = None
        self.heatmap_nodes: dict = {}
        self.report_path: Path | None = None
        self.state.update(STATE_DEFAULTS)
        self.state.change("bs_map")(self._on_map_changed)
        self.state.change("bs_map_opacity")(self._on_opacity_changed)

    # ---- helpers -------------------------------------------------------------------------------------

    def _guarded(self, action: str, function, *args):
        """Run a user action; a bad input becomes one line in the panel instead of a server trace."""
        self.state.bs_error = ""
        try:
            return function(*args)
        except BadInputError as exc:
            self.state.bs_error = " ".join(str(exc).split())
        except Exception as exc:  # an internal error: say so in the panel and keep the server alive
            logger.exception("%s failed", action)
            self.state.bs_error = f"{action} failed: {type(exc).__name__}: {exc}"
        return None

    def _reset_case_state(self) -> None:
        keep = ("bs_rim_mm", "bs_peri_mm", "bs_map_opacity")
        self.state.update({k: v for k, v in STATE_DEFAULTS.items() if k not in keep})
        self.rois = self.prediction = self.report_path = None
        self.heatmap_nodes = {}
        self.point_node = None

    @property
    def _views(self):
        return self.slicer_app.view_manager

    # ---- loading -------------------------------------------------------------------------------------

    def load_demo_case(self) -> None:
        self._guarded("Loading the demo case", self._load_demo_case)

    def _load_demo_case(self) -> None:
        from BreastSubtypeLib.phantom import generate_phantom

        case = generate_phantom(
            DEMO_SEED, size_ijk=DEMO_SIZE_IJK, spacing_mm=DEMO_SPACING_MM, direction=DEMO_DIRECTION
        )
        self.session.new_case()
        self._show_image(case.image, "Demo phantom")
        # Open the demo at its lesion, as a radiologist would scroll to it before clicking.
        self.centre_views_on_ras(_mask_centroid_ras(case.tumour_mask))
        self.state.bs_message = "Demo case loaded (synthetic phantom). Click the lesion or draw the tumour."

    def load_upload(self, file: dict | None) -> None:
        self._guarded("Loading the upload", self._load_upload, file)

    def _load_upload(self, file: dict | None) -> None:
        from trame.app.file_upload import ClientFile

        from BreastSubtypeLib.imaging.io import read_image

        if not file:
            return
        upload = ClientFile(file)
        path = self.session.save_upload(upload.name, upload.content)
        image = read_image(path)
        self._show_image(image, safe_file_name(upload.name))
        self.state.bs_message = "Volume loaded. Click the lesion or draw the tumour."

    def _show_image(self, image, name: str) -> None:
        from BreastSubtypeMRML.volumes import volume_node_from_sitk

        self.slicer_app.scene.Clear(False)
        self._reset_case_state()
        self.image = image
        self.volume_node = volume_node_from_sitk(self.slicer_app.scene, image, name)
        self.slicer_app.display_manager.show_volume(self.volume_node, do_reset_views=True)
        self.segmentation_node = None
        self.segment_editor_logic.on_volume_changed(self.volume_node)
        self.segmentation_node = self.slicer_app.segmentation_editor.active_segmentation_node
        self.state.bs_case_loaded = True
        self.state.bs_case_name = name

    def centre_views_on_ras(self, ras) -> None:
        for view in self._views.get_slice_views():
            view.get_view_node().JumpSliceByCentering(*[float(v) for v in ras])
            view.schedule_render()

    # ---- tumour: one click or the segment editor ------------------------------------------------------

    def start_point_placement(self) -> None:
        self._guarded("Placing the lesion point", self._start_point_placement)

    def _start_point_placement(self) -> None:
        import slicer

        if self.volume_node is None:
            raise BadInputError("Load a volume before placing the lesion point.")
        scene = self.slicer_app.scene
        if self.point_node is not None and scene.IsNodePresent(self.point_node):
            scene.RemoveNode(self.point_node)
        self.point_node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "Lesion point")
        self.point_node.AddObserver(
            slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent, self._on_point_placed
        )
        self.slicer_app.markups_logic.place_node(self.point_node, persistent=False)
        self.state.bs_placing_point = True
        self.state.bs_message = "Click the centre of the lesion in a slice view."

    def _on_point_placed(self, node, _event) -> None:
        ras = [0.0, 0.0, 0.0]
        node.GetNthControlPointPositionWorld(node.GetNumberOfControlPoints() - 1, ras)
        self.state.bs_placing_point = False
        self.state.bs_seed_ras = ", ".join(f"{v:.1f}" for v in ras)
        self.find_tumour_at_seed()
        self.state.flush()

    def find_tumour_at_seed(self) -> None:
        self._guarded("Finding the tumour", self._find_tumour_at_seed)

    def _find_tumour_at_seed(self) -> None:
        from BreastSubtypeLib.rois.one_click import segment_tumour_from_seed

        if self.image is None:
            raise BadInputError("Load a volume before finding the tumour.")
        seed_ras = _parse_ras(self.state.bs_seed_ras)
        result = segment_tumour_from_seed(self.image, seed_ras, seed_space="RAS")
        self._set_tumour_mask(result.mask)
        self.state.bs_tumour_volume_ml = round(float(result.volume_ml), 2)
        warnings = "; ".join(result.warnings)
        self.state.bs_message = (
            f"Tumour found: {result.volume_ml:.2f} mL. Edit it if needed, then Generate ROIs."
            + (f" ({warnings})" if warnings else "")
        )

    def _set_tumour_mask(self, mask) -> None:
        from BreastSubtypeMRML.segments import set_tumour_segment

        self.tumour_segment_id = set_tumour_segment(self.slicer_app.scene, self.segmentation_node, mask)
        self.state.bs_tumour_ready = True
        self._refresh_segment_list()

    def _refresh_segment_list(self) -> None:
        # Segments added outside the editor (one click, ROIs) must show up in its list too.
        self.segment_editor_logic._on_segment_editor_changed()

    def _tumour_segment_id(self) -> str:
        """The one-click tumour if there is one, else the segment the user drew (the editor's active one)."""
        from BreastSubtypeMRML.segments import ROI_SEGMENT_IDS

        segmentation = self.segmentation_node.GetSegmentation() if self.segmentation_node else None
        if segmentation is None or segmentation.GetNumberOfSegments() == 0:
            raise BadInputError("Draw the tumour or click the lesion first.")
        if self.tumour_segment_id and segmentation.GetSegment(self.tumour_segment_id) is not None:
            return self.tumour_segment_id
        roi_ids = set(ROI_SEGMENT_IDS.values())
        active = self.slicer_app.segmentation_editor.get_active_segment_id()
        if active and active not in roi_ids:
            return active
        drawn = [sid for sid in segmentation.GetSegmentIDs() if sid not in roi_ids]
        if not drawn:
            raise BadInputError("Draw the tumour or click the lesion first.")
        return drawn[0]

    def _tumour_mask(self):
        import SimpleITK as sitk

        from BreastSubtypeMRML.segments import tumour_mask_from_segment

        mask = tumour_mask_from_segment(
            self.slicer_app.scene, self.segmentation_node, self._tumour_segment_id(), self.volume_node
        )
        if not sitk.GetArrayViewFromImage(mask).any():
            raise BadInputError("The tumour segment is empty: draw the tumour or click the lesion first.")
        return mask

    # ---- ROIs ----------------------------------------------------------------------------------------

    def generate_rois(self) -> None:
        self._guarded("Generating the ROIs", self._generate_rois)

    def _generate_rois(self) -> None:
        from BreastSubtypeLib.rois.regions import compute_rois
        from BreastSubtypeMRML.segments import set_roi_segments

        if self.image is None:
            raise BadInputError("Load a volume before generating the ROIs.")
        rim_mm, peri_mm = float(self.state.bs_rim_mm), float(self.state.bs_peri_mm)
        self.rois = compute_rois(self.image, self._tumour_mask(), rim_mm=rim_mm, peri_mm=peri_mm)
        set_roi_segments(self.slicer_app.scene, self.segmentation_node, self.rois.labelmap)
        self._refresh_segment_list()
        self.state.bs_roi_rows = [
            {"name": name, "volume_ml": round(float(ml), 2)} for name, ml in self.rois.volumes_ml.items()
        ]
        self.state.bs_rois_ready = True
        note = "; ".join(self.rois.warnings)
        self.state.bs_message = (
            f"ROIs ready (rim {self.rois.rim_mm_used:g} mm, peritumoral {peri_mm:g} mm)."
            + (f" {note}" if note else "")
        )

    # ---- prediction ----------------------------------------------------------------------------------

    def run(self) -> None:
        if self.state.bs_running:
            return
        create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        with self.state:
            self.state.bs_error = ""
            self.state.bs_running = True
            self.state.bs_progress = 0
            self.state.bs_stage = "Starting"
        try:
            if self.image is None:
                raise BadInputError("Load a volume before running the model.")
            mask = self._tumour_mask()
            out_dir = self.session.case_dir / "outputs"

            def progress(fraction: float, stage: str) -> None:
                loop.call_soon_threadsafe(self._set_progress, fraction, stage)

            self.prediction, self.report_path = await asyncio.to_thread(
                _predict_and_write,
                self.image,
                mask,
                out_dir,
                progress,
                self.state.bs_rim_mm,
                self.state.bs_peri_mm,
            )
            with self.state:
                self._show_prediction()
        except BadInputError as exc:
            with self.state:
                self.state.bs_error = " ".join(str(exc).split())
        except Exception as exc:
            logger.exception("Run failed")
            with self.state:
                self.state.bs_error = f"Run failed: {type(exc).__name__}: {exc}"
        finally:
            with self.state:
                self.state.bs_running = False

    def _set_progress(self, fraction: float, stage: str) -> None:
        with self.state:
            self.state.bs_progress = round(100 * fraction)
            self.state.bs_stage = stage

    def _show_prediction(self) -> None:
        from .results import result_summary

        self.state.bs_result = result_summary(self.prediction)
        self._add_heatmaps()
        self.state.bs_report_ready = self.report_path is not None and self.report_path.is_file()
        self.state.bs_progress = 100
        self.state.bs_message = "Done. Review the heatmaps and download the report."

    # ---- heatmaps ------------------------------------------------------------------------------------

    def _add_heatmaps(self) -> None:
        from BreastSubtypeMRML.heatmaps import add_heatmap_volume

        scene = self.slicer_app.scene
        for node in self.heatmap_nodes.values():
            scene.RemoveNode(node)
        self.heatmap_nodes = {
            name: add_heatmap_volume(scene, image, f"Attention {name}")
            for name, image in self.prediction.maps.items()
        }
        self.state.bs_map_items = list(self.heatmap_nodes)
        first = "fused" if "fused" in self.heatmap_nodes else next(iter(self.heatmap_nodes), None)
        self.state.bs_map = first
        self._on_map_changed(first)

    def _on_map_changed(self, bs_map=None, **_) -> None:
        from BreastSubtypeMRML.heatmaps import show_overlay

        if self.volume_node is None:
            return
        node = self.heatmap_nodes.get(bs_map) if bs_map else None
        show_overlay(self.slicer_app.scene, self.volume_node, node, float(self.state.bs_map_opacity))
        self._render_slice_views()

    def _on_opacity_changed(self, bs_map_opacity=0.5, **_) -> None:
        for view in self._views.get_slice_views():
            view.set_foreground_opacity(min(max(float(bs_map_opacity), 0.0), 1.0))
        self._render_slice_views()

    def _render_slice_views(self) -> None:
        for view in self._views.get_slice_views():
            view.schedule_render()

    # ---- report --------------------------------------------------------------------------------------

    def report_bytes(self) -> bytes:
        if self.report_path is None:
            raise BadInputError("Run the model before downloading the report.")
        return self.session.resolve(
            self.report_path.relative_to(self.session.case_dir).as_posix()
        ).read_bytes()


def _predict_and_write(image, mask, out_dir: Path, progress, rim_mm: float, peri_mm: float):
    """Worker-thread part of Run: the library's predict and its case outputs (report.html)."""
    from BreastSubtypeLib.inference.outputs import write_case_outputs
    from BreastSubtypeLib.inference.predict import predict
    from BreastSubtypeLib.progress import scaled

    prediction = predict(image, mask, model="demo", device="auto", progress=scaled(progress, 0.0, 0.85))
    progress(0.9, "Writing the report")
    write_case_outputs(prediction, out_dir)
    progress(1.0, "Done")
    return prediction, out_dir / "report.html"


def _parse_ras(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in str(text).replace(";", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise BadInputError(f"The lesion point must be three numbers 'R, A, S' in mm, not '{text}'.")
    return values


def _mask_centroid_ras(mask) -> tuple[float, float, float]:
    """Physical centre of a binary mask, in RAS (the mask is an LPS ``sitk.Image``)."""
    import numpy as np
    import SimpleITK as sitk

    from BreastSubtypeLib.imaging.geometry import lps_to_ras

    k, j, i = np.nonzero(sitk.GetArrayViewFromImage(mask))
    index = (float(i.mean()), float(j.mean()), float(k.mean()))
    return tuple(lps_to_ras(mask.TransformContinuousIndexToPhysicalPoint(index)))
