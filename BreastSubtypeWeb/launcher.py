"""One session per user on a shared server, through wslink's own launcher (``python -m wslink.launcher``).

The launcher serves the page; each browser that opens it asks the launcher for a session, and the
launcher starts one ``breast-subtype web`` process for it on a port of its own, with a token of its own
(the launcher's ``${secret}``), its own scene and its own private temporary folder. A session ends
``idle_timeout_s`` after its browser has gone, and its folder goes with it; a session killed outright
leaves a folder that the next session's start sweeps away. This module only writes what the launcher
reads: its configuration and the page's static files (trame's own generator).

>>> write_launcher_setup(Path("/srv/breast-subtype"), public_origin="https://radiology.example")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from BreastSubtypeLib.errors import BadInputError

# The modules whose client files the app's pages load (trame's client, Vuetify, remote views, Slicer, ours).
CLIENT_MODULES = ("www", "vuetify3", "rca", "slicer", "BreastSubtypeWeb.module")
# The trame client asks the launcher for this application name (its page's default).
APPLICATION = "trame"
# Printed by each session once it listens (trame silences wslink's own "Starting factory").
READY_LINE = "BreastSubtype is ready"


@dataclass(frozen=True)
class LauncherSetup:
    config: Path
    www: Path


def parse_port_range(text: str) -> tuple[int, int]:
    try:
        first, last = (int(part) for part in text.split("-"))
    except ValueError:
        raise BadInputError(f"--session-ports takes FIRST-LAST (e.g. 9001-9020), not '{text}'.") from None
    if not 1024 <= first <= last <= 65535:
        raise BadInputError(f"--session-ports must be a range within 1024-65535, not '{text}'.")
    return first, last


def session_command(
    python: str, public_origin: str, idle_timeout_s: int, extra_args: tuple[str, ...] = ()
) -> list[str]:
    """What the launcher runs per session; ``${port}`` and ``${secret}`` are the launcher's own."""
    return [
        python,
        "-m",
        "BreastSubtypeLib.cli.main",
        "web",
        "--port",
        "${port}",
        "--token",
        "${secret}",
        "--allow-origin",
        public_origin,
        "--idle-timeout",
        str(idle_timeout_s),
        *extra_args,
    ]


def write_launcher_setup(
    folder: Path,
    *,
    public_origin: str,
    launcher_host: str = "127.0.0.1",
    launcher_port: int = 9000,
    session_ports: tuple[int, int] = (9001, 9020),
    session_host: str = "127.0.0.1",
    idle_timeout_s: int = 300,
    session_url: str = "ws://${host}:${port}/ws",
    extra_args: tuple[str, ...] = (),
    python: str | None = None,
) -> LauncherSetup:
    """Write ``launcher.json`` and the page's files (``www/``) into ``folder``."""
    from trame.tools.www import StaticContentGenerator

    folder = Path(folder).resolve()
    www, logs = folder / "www", folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    generator = StaticContentGenerator()
    generator.client_type = "vue3"
    with contextlib.redirect_stdout(io.StringIO()):  # it prints each module name it imports
        generator.enable_modules(*CLIENT_MODULES)
    generator.write(www)
    config = {
        "configuration": {
            "host": launcher_host,
            "port": launcher_port,
            "endpoint": "paraview",  # where trame's page asks for a session
            "content": str(www),
            "proxy_file": str(folder / "proxy-mapping.txt"),
            "sessionURL": session_url,
            "timeout": 120,
            "log_dir": str(logs),
            "fields": ["sessionURL", "id"],  # and the secret, which the launcher adds itself
        },
        "resources": [{"host": session_host, "port_range": list(session_ports)}],
        "properties": {},
        "apps": {
            APPLICATION: {
                "cmd": session_command(python or sys.executable, public_origin, idle_timeout_s, extra_args),
                "ready_line": READY_LINE,
            }
        },
    }
    path = folder / "launcher.json"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return LauncherSetup(path, www)
