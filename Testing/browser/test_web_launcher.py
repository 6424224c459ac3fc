"""Each user apart on a shared server: wslink's launcher (``python -m wslink.launcher``) with the
configuration ``breast-subtype web --launcher-config`` writes gives each browser its own session process,
scene and private folder; an idle session stops and its folder goes with it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from playwright.sync_api import expect
from web_server import REPO_ROOT

from BreastSubtypeLib.cli.main import main

IDLE_TIMEOUT_S = 3


def _free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free ports on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no run of free ports")


def _session_folders(folder):
    return sorted(p.name for p in folder.glob("breast-subtype-web-*"))


@pytest.fixture(scope="module")
def launcher(tmp_path_factory):
    root = tmp_path_factory.mktemp("launcher")
    base = _free_port_run(4)
    args = ["web", "--launcher-config", str(root / "setup"), "--launcher-port", str(base)]
    args += ["--session-ports", f"{base + 1}-{base + 3}", "--idle-timeout", str(IDLE_TIMEOUT_S)]
    assert main(args) == 0
    sessions_tmp = root / "tmp"
    sessions_tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(sessions_tmp), "VTK_DEFAULT_OPENGL_WINDOW": "vtkOSOpenGLRenderWindow"}
    env.pop("DISPLAY", None)
    with open(root / "launcher.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "wslink.launcher", str(root / "setup" / "launcher.json")],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{base}/"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(url + "index.html", timeout=2):
                    break
            except OSError:
                time.sleep(0.3)
        yield url, sessions_tmp
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_each_browser_gets_its_own_session_and_folder(browser, launcher):
    url, sessions_tmp = launcher
    first, second = browser.new_context(), browser.new_context()
    try:
        alice = first.new_page()
        alice.set_default_timeout(90_000)
        alice.goto(url)
        alice.get_by_test_id("load-demo").click()
        expect(alice.get_by_test_id("case-name")).to_have_text("Demo phantom")
        bob = second.new_page()
        bob.set_default_timeout(90_000)
        bob.goto(url)
        bob.get_by_test_id("load-demo").wait_for()
        # Bob's session is not Alice's: no case open, and a private folder of its own.
        assert bob.get_by_test_id("case-name").count() == 0
        assert len(_session_folders(sessions_tmp)) == 2
    finally:
        first.close()
        second.close()
    # Both browsers gone: each session stops after its idle time and removes its folder.
    deadline = time.monotonic() + 60
    while _session_folders(sessions_tmp) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _session_folders(sessions_tmp) == []
