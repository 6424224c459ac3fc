"""The web app as a real server process on 127.0.0.1, started and stopped by the browser tests.

A module with its own name (not conftest) so test files can import it unambiguously.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 90


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebServer:
    """``url`` is the bare address; ``access_url`` the link with the token, as printed at start."""

    def __init__(
        self, log_path: Path, extra_args: tuple[str, ...] = (), env: dict | None = None, ssl_context=None
    ) -> None:
        self.ssl_context = ssl_context  # for a server started with --tls-cert/--tls-key
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.access_url = ""
        self.token = ""
        self.log_path = log_path
        env = {
            **os.environ,
            "VTK_DEFAULT_OPENGL_WINDOW": "vtkOSOpenGLRenderWindow",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        env.pop("DISPLAY", None)
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "BreastSubtypeLib.cli.main",
                "--debug",
                "web",
                "--port",
                str(self.port),
                *extra_args,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"breast-subtype web exited with {self.process.returncode}:\n{self.log()[-3000:]}"
                )
            printed = re.search(r"(https?://127\.0\.0\.1:\d+/\?secret=([\w-]+))", self.log())
            if printed:
                self.access_url, self.token = printed.groups()
                with urllib.request.urlopen(self.access_url, timeout=5, context=self.ssl_context) as response:
                    if response.status == 200:
                        return
            time.sleep(0.5)
        raise RuntimeError(
            f"breast-subtype web did not answer within {SERVER_START_TIMEOUT_S} s:\n{self.log()}"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self._log.close()
