"""Background process runner: the GUI starts the CLI, polls it from a timer, and can cancel it.

Standard library (psutil when present) and the Lib's progress-line parser, no qt and no slicer, so it runs the same in Slicer
and under pytest with a plain ``python``. Reader threads drain stdout/stderr so a chatty child
never blocks on a full pipe; the GUI thread only calls :meth:`BackgroundProcess.poll` and
:meth:`BackgroundProcess.take_log`, which never wait.

Cancel stops the whole process tree. ``PythonSlicer`` is a launcher that starts the real
interpreter as its child (CTK AppLauncher), so killing only the launcher's pid leaves the
prediction running on Windows; psutil walks the tree on every OS, and on POSIX the child's own
process group is killed as well.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Protocol

from BreastSubtypeLib.progress import ProgressUpdate, parse_progress_line  # the one parser of --progress-json


def python_slicer_executable() -> str:
    """Slicer's own interpreter (on PATH inside Slicer, as ``slicer.util.executePythonModule`` relies
    on), so the child sees the packages installed into Slicer; plain ``python`` outside Slicer."""
    return shutil.which("PythonSlicer") or sys.executable


def kill_process_tree(pid: int, timeout_s: float = 10.0) -> None:
    """Kill ``pid`` and every process it started; waits for the descendants (``timeout_s`` at most).

    ``pid`` itself is not waited for: it is the caller's child, which the caller reaps (psutil
    would reap it first and ``Popen`` would then report exit status 0).
    """
    try:
        import psutil
    except ImportError:  # installed with the other requirements; a bare Slicer may lack it
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            descendants = root.children(recursive=True)  # before any kill: orphans lose their parent
        except psutil.NoSuchProcess:
            root, descendants = None, []
        for process in [root, *descendants]:
            try:
                if process is not None:
                    process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(descendants, timeout=timeout_s)
    elif sys.platform == "win32":
        subprocess.run(["taskkill", "/T", "/F", "/PID", str(pid)], capture_output=True, check=False)
    if sys.platform != "win32":
        import signal

        try:  # the child leads its own session (start_new_session): this also reaches detached workers
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class ProcessRunner(Protocol):
    """What the logic needs from a background process (tests may substitute their own)."""

    def start(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None: ...
    def poll(self) -> list[ProgressUpdate]: ...
    def take_log(self) -> list[str]: ...
    def cancel(self) -> None: ...
    @property
    def running(self) -> bool: ...
    @property
    def cancelled(self) -> bool: ...
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
        self._log: list[str] = []
        self._threads: list[threading.Thread] = []
        self._cancelled = False

    def start(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        if self._alive():
            raise RuntimeError("A prediction is already running.")
        self._cancelled = False
        self._stderr, self._log = [], []
        self._lines = queue.Queue()
        child_env = dict(os.environ if env is None else env)
        child_env.setdefault("PYTHONUNBUFFERED", "1")
        self._process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,  # bytes: universal newlines would split a tqdm bar at each "\r"
            env=child_env,
            start_new_session=sys.platform != "win32",
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
        self._threads = [
            threading.Thread(target=self._drain, args=(self._process.stdout, None), daemon=True),
            threading.Thread(target=self._drain, args=(self._process.stderr, self._stderr), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _drain(self, stream, keep: list[str] | None) -> None:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
            if keep is not None:
                keep.append(line)
            self._lines.put(line)
        stream.close()

    def poll(self) -> list[ProgressUpdate]:
        """Progress updates received since the last call; other lines go to :meth:`take_log`. Never blocks."""
        updates = []
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return updates
            update = parse_progress_line(line)
            if update is not None:
                updates.append(update)
            elif line.strip():
                self._log.append(line.rstrip("\r\n").rsplit("\r", 1)[-1])  # a tqdm bar: its last state

    def take_log(self) -> list[str]:
        """The child's other output lines (warnings, errors) since the last call, for the log panel."""
        lines, self._log = self._log, []
        return lines

    @property
    def running(self) -> bool:
        """True while the child runs, and after it exits until :meth:`poll` has handed out its last
        lines: a caller that polls until this turns false never misses the final progress update
        (a child that exits right after writing leaves them in the pipe for a moment)."""
        if self._process is None:
            return False
        if self._process.poll() is None:
            return True
        if self._cancelled:  # a cancelled run's last lines mean nothing
            return False
        return any(thread.is_alive() for thread in self._threads) or not self._lines.empty()

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def returncode(self) -> int | None:
        if self._process is None or self._process.poll() is None:
            return None
        for thread in self._threads:  # the child exited: its last lines are on the way
            thread.join(timeout=5)
        return self._process.returncode

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def error_text(self) -> str:
        """The child's stderr; the CLI's one-line error is its last non-empty line."""
        return "".join(self._stderr).strip()

    def cancel(self) -> None:
        """Stop the child and everything it started; safe to call when nothing runs."""
        if not self._alive():
            return
        self._cancelled = True
        kill_process_tree(self._process.pid)
        self._process.wait(timeout=10)

    def wait(self, timeout: float | None = None) -> int:
        """Block until the child exits: scripts and tests only (the GUI polls instead)."""
        self._process.wait(timeout=timeout)
        return self.returncode
