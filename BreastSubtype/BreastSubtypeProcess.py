"""Background process runner: the GUI starts the CLI, polls it from a timer, and can cancel it.

Pure standard library (no qt, no slicer), so it runs the same in Slicer, in the web app and under
pytest with a plain ``python``. Reader threads drain stdout/stderr so a chatty child never blocks
on a full pipe; the GUI thread only ever calls :meth:`BackgroundProcess.poll`, which never waits.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProgressUpdate:
    fraction: float
    stage: str


def parse_progress_line(line: str) -> ProgressUpdate | None:
    """``{"progress": 0.4, "stage": "..."}`` (``--progress-json``) -> update; other lines -> None."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "progress" not in data:
        return None
    return ProgressUpdate(min(max(float(data["progress"]), 0.0), 1.0), str(data.get("stage", "")))


class ProcessRunner(Protocol):
    """What the widget needs from a background process (tests may substitute their own)."""

    def start(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None: ...
    def poll(self) -> list[ProgressUpdate]: ...
    def cancel(self) -> None: ...
    @property
    def running(self) -> bool: ...
    @property
    def returncode(self) -> int | None: ...
    @property
    def error_text(self) -> str: ...


class BackgroundProcess:
    """A child process whose stdout carries progress JSON lines and whose stderr carries errors."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._stderr: list[str] = []
        self._threads: list[threading.Thread] = []
        self.cancelled = False

    def start(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        if self.running:
            raise RuntimeError("A prediction is already running.")
        self.cancelled = False
        self._stderr = []
        self._lines = queue.Queue()
        child_env = dict(os.environ if env is None else env)
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        self._process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=child_env,
            # Its own process group on POSIX so Cancel also stops any workers it spawned.
            start_new_session=sys.platform != "win32",
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
        self._threads = [
            threading.Thread(target=self._drain, args=(self._process.stdout, self._lines.put), daemon=True),
            threading.Thread(
                target=self._drain, args=(self._process.stderr, self._stderr.append), daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _drain(stream, sink) -> None:
        for line in stream:
            sink(line)
        stream.close()

    def poll(self) -> list[ProgressUpdate]:
        """Progress updates received since the last call; never blocks."""
        updates = []
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return updates
            update = parse_progress_line(line)
            if update is not None:
                updates.append(update)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        if self._process is None or self._process.poll() is None:
            return None
        for thread in self._threads:  # the child exited: collect its last lines
            thread.join(timeout=5)
        return self._process.returncode

    @property
    def error_text(self) -> str:
        """The child's stderr; the CLI's one-line error is its last non-empty line."""
        return "".join(self._stderr).strip()

    def cancel(self) -> None:
        """Stop the child (and its process group); safe to call when nothing runs."""
        if not self.running:
            return
        self.cancelled = True
        if sys.platform == "win32":
            self._process.kill()
        else:
            import signal

            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._process.wait(timeout=10)

    def wait(self, timeout: float | None = None) -> int:
        """Block until the child exits (self-tests and scripts only, never from the GUI)."""
        self._process.wait(timeout=timeout)
        return self.returncode
