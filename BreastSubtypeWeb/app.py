"""The trame application: Slicer slice views and 3-D view, the segment editor and the BreastSubtype panel."""

from __future__ import annotations

import logging
import sys

from .rendering import configure_offscreen_rendering

configure_offscreen_rendering()

from trame.app import TrameApp  # noqa: E402
from trame.widgets import vuetify3 as v3  # noqa: E402
from trame_slicer import module as trame_slicer_module  # noqa: E402
from trame_slicer.app.logic import LayoutButtonLogic, SegmentEditorLogic  # noqa: E402
from trame_slicer.app.ui import (  # noqa: E402
    ControlButton,
    SegmentEditorUI,
    SegmentEditorUndoRedoUI,
    ViewerLayout,
    ViewerLayoutState,
)
from trame_slicer.core import SlicerApp  # noqa: E402
from trame_slicer.rca_view import register_rca_factories  # noqa: E402

from . import module as web_module  # noqa: E402
from .session import DEFAULT_MAX_UPLOAD_MB, SessionFolder  # noqa: E402

logger = logging.getLogger(__name__)

PANEL = "BreastSubtypePanel"
LAYOUT_ID = "Axial Primary"


class BreastSubtypeWebApp(TrameApp):
    def __init__(self, server=None, *, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, model: str = "demo"):
        super().__init__(server, client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.server.enable_module(web_module)
        self.session = SessionFolder(max_upload_mb=max_upload_mb)
        self.slicer_app = SlicerApp()
        register_rca_factories(self.slicer_app.view_manager, self.server)

        self._segment_editor_logic = SegmentEditorLogic(self.server, self.slicer_app)
        self._layout_logic = LayoutButtonLogic(self.server, self.slicer_app)

        from .workflow import CaseWorkflow

        self.workflow = CaseWorkflow(
            self.server, self.slicer_app, self.session, self._segment_editor_logic, model=model
        )
        self._build_ui()
        self._layout_logic.data.current_layout_id = LAYOUT_ID
        self.server.state.trame__title = "BreastSubtype"

    def _build_ui(self) -> None:
        from .panel import BreastSubtypePanel

        with ViewerLayout(self.server, title="BreastSubtype", is_drawer_visible=True) as self.layout:
            layout_state = self.layout.typed_state
            layout_state.data.active_tool = PANEL
            active = layout_state.name.active_tool
            with self.layout.drawer:
                self.panel = BreastSubtypePanel(self.workflow, v_if=(f"{active} === '{PANEL}'",))
                self.segment_editor_ui = SegmentEditorUI(v_if=(f"{active} === 'SegmentEditorUI'",))
            with self.layout.toolbar:
                for name, icon, tool in [
                    ("BreastSubtype", "mdi-chart-donut", PANEL),
                    ("Draw or erase the tumour", "mdi-brush", "SegmentEditorUI"),
                ]:
                    ControlButton(
                        name=name,
                        icon=icon,
                        click=f"{active} = '{tool}'",
                        active=(f"{active} === '{tool}'",),
                        classes="mt-1",
                    )
            with self.layout.undo_redo:
                SegmentEditorUndoRedoUI(editor_ui=self.segment_editor_ui)
            with self.layout.content:
                self._layout_logic.layout_manager.initialize_layout_grid(self.layout)
            with self.layout.footer:
                v3.VSpacer()
        self._segment_editor_logic.set_ui(self.segment_editor_ui)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    model: str = "demo",
) -> None:
    """Serve until interrupted; the session folder is removed on the way out."""
    # trame parses sys.argv itself; keep our own flags away from it.
    sys.argv = sys.argv[:1]
    app = BreastSubtypeWebApp(max_upload_mb=max_upload_mb, model=model)
    try:
        app.server.start(host=host, port=port, open_browser=False, timeout=0, show_connection_info=True)
    finally:
        app.session.close()


__all__ = ["BreastSubtypeWebApp", "ViewerLayoutState", "serve"]
