"""The trame application: Slicer slice views and 3-D view, the segment editor and the BreastSubtype panel."""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

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
from . import security  # noqa: E402
from .launcher import READY_LINE  # noqa: E402
from .session import DEFAULT_IMAGE_MEMORY_MB, DEFAULT_MAX_UPLOAD_MB, SessionFolder  # noqa: E402
from .view_overlays import slice_view_overlay  # noqa: E402

logger = logging.getLogger(__name__)

PANEL = "BreastSubtypePanel"
RESULTS_WIDTH_PX = 440
LAYOUT_ID = "Axial Primary"


class BreastSubtypeWebApp(TrameApp):
    def __init__(
        self,
        server=None,
        *,
        max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
        image_memory_mb: float = DEFAULT_IMAGE_MEMORY_MB,
        model: str = "demo",
    ):
        super().__init__(server, client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.server.enable_module(web_module)
        self.session = SessionFolder(max_upload_mb=max_upload_mb, image_memory_mb=image_memory_mb)
        self.slicer_app = SlicerApp()
        register_rca_factories(self.slicer_app.view_manager, self.server, slice_view_ui_f=slice_view_overlay)

        self._segment_editor_logic = SegmentEditorLogic(self.server, self.slicer_app)
        self._layout_logic = LayoutButtonLogic(self.server, self.slicer_app)

        from .workflow import CaseWorkflow

        self.workflow = CaseWorkflow(
            self.server, self.slicer_app, self.session, self._segment_editor_logic, model=model
        )
        self._build_ui()
        self._layout_logic.data.current_layout_id = LAYOUT_ID
        self.workflow.attach_views()
        self.server.state.trame__title = "BreastSubtype"

    def _build_ui(self) -> None:
        from .panel import BreastSubtypePanel
        from .results_panel import ResultsPanel

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
                    ("All segment editor tools", "mdi-brush", "SegmentEditorUI"),
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
            # Results beside the views: read whole at 1600 x 1000, without scrolling.
            with v3.VNavigationDrawer(
                location="right", permanent=True, width=RESULTS_WIDTH_PX, disable_resize_watcher=True
            ):
                self.results_panel = ResultsPanel(self.workflow)
            with self.layout.footer:
                v3.VSpacer()
        self._segment_editor_logic.set_ui(self.segment_editor_ui)


def access_url(host: str, port: int, token: str, tls: bool) -> str:
    """The link printed at start: this server's address with its token, as Jupyter prints its own."""
    if host in security.WILDCARD_HOSTS:
        host = socket.getfqdn()
    elif ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}/?{security.TOKEN_QUERY}={token}"


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    token: str,
    allow_hosts: tuple[str, ...] = (),
    allow_origins: tuple[str, ...] = (),
    tls: tuple[Path, Path] | None = None,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    image_memory_mb: float = DEFAULT_IMAGE_MEMORY_MB,
    model: str = "demo",
    idle_timeout_s: int = 0,
) -> None:
    """Serve until interrupted (or idle that long); the session folder is removed on the way out."""
    from trame_client.module import vue3

    # trame parses sys.argv itself; keep our own flags (and the token) away from it.
    sys.argv = sys.argv[:1]
    app = BreastSubtypeWebApp(max_upload_mb=max_upload_mb, image_memory_mb=image_memory_mb, model=model)
    # The token becomes wslink's secret through trame's own parser, never through a visible argv.
    app.server.cli.set_defaults(authKey=token, ssl=",".join(str(p) for p in tls) if tls else "")
    policy = security.AccessPolicy(
        token=token,
        host_names=security.server_host_names(host, allow_hosts),
        extra_origins=frozenset(allow_origins),
        tls=tls is not None,
        # An upload travels as one message: its bytes plus a little framing.
        max_message_bytes=app.session.max_upload_bytes + 2**20,
    )
    security.install(app.server, policy, Path(vue3.www) / "index.html")

    def announce(**_) -> None:
        url = access_url(host, app.server.port, token, tls is not None)
        print(
            f"\n{READY_LINE}. Open this link (it holds the access token: keep it private):\n    {url}\n",
            flush=True,
        )

    app.server.controller.on_server_ready.add(announce)
    try:
        app.server.start(
            host=host, port=port, open_browser=False, timeout=idle_timeout_s, show_connection_info=False
        )
    finally:
        app.session.close()


__all__ = ["BreastSubtypeWebApp", "ViewerLayoutState", "serve"]
