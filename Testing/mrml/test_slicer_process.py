"""The background-process runner, run with a plain python child (as Slicer runs PythonSlicer)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "BreastSubtype"))
from BreastSubtypeModuleLib.process import BackgroundProcess, ProgressUpdate, parse_progress_line  # noqa: E402


def test_progress_lines_are_parsed_and_other_lines_ignored():
    assert parse_progress_line('{"progress": 0.25, "stage": "ROIs"}\n') == ProgressUpdate(0.25, "ROIs")
    assert parse_progress_line("Loading model...") is None
    assert parse_progress_line('{"progress": 1.7}') == ProgressUpdate(1.0, "")
    assert parse_progress_line("{not json") is None


def _poll_until_done(process: BackgroundProcess, timeout_s: float = 20.0) -> list[ProgressUpdate]:
    updates = []
    deadline = time.monotonic() + timeout_s
    while process.running and time.monotonic() < deadline:
        updates += process.poll()
        time.sleep(0.02)
    process.wait(timeout=5)
    return updates + process.poll()


def test_child_progress_and_exit_status_reach_the_parent():
    script = (
        "import json, sys\n"
        "for i in range(3): print(json.dumps({'progress': i / 2, 'stage': f'step {i}'}), flush=True)\n"
        "print('breast-subtype predict: error: the mask is empty', file=sys.stderr)\n"
        "sys.exit(2)\n"
    )
    process = BackgroundProcess()
    process.start([sys.executable, "-c", script])
    updates = _poll_until_done(process)
    assert [u.fraction for u in updates] == [0.0, 0.5, 1.0]
    assert updates[-1].stage == "step 2"
    assert process.returncode == 2
    assert process.error_text == "breast-subtype predict: error: the mask is empty"


def test_cancel_stops_a_running_child_quickly():
    process = BackgroundProcess()
    process.start(
        [sys.executable, "-c", "import time; print('{\"progress\": 0.1}', flush=True); time.sleep(60)"]
    )
    time.sleep(0.3)
    started = time.monotonic()
    process.cancel()
    assert time.monotonic() - started < 5
    assert not process.running
    assert process.cancelled
    assert process.returncode != 0


def test_second_start_while_running_is_refused():
    process = BackgroundProcess()
    process.start([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(RuntimeError, match="already running"):
            process.start([sys.executable, "-c", "pass"])
    finally:
        process.cancel()


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_cancel_kills_the_interpreter_a_launcher_started(tmp_path):
    """PythonSlicer is a launcher whose child runs the prediction (as on Windows): Cancel must stop
    both, even when the child left the launcher's process group (killpg alone would miss it)."""
    pid_file = tmp_path / "interpreter.pid"
    interpreter = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    launcher = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {interpreter!r}], start_new_session=True)\n"
        "print('{\"progress\": 0.1}', flush=True)\n"
        "child.wait()\n"
    )
    process = BackgroundProcess()
    process.start([sys.executable, "-c", launcher])
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text(encoding="utf-8"):
        assert time.monotonic() < deadline, "the interpreter did not start"
        time.sleep(0.05)
    interpreter_pid = int(pid_file.read_text(encoding="utf-8"))
    assert _alive(interpreter_pid)
    process.cancel()
    deadline = time.monotonic() + 10
    while _alive(interpreter_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(interpreter_pid)
    assert not process.running and process.cancelled


def test_log_lines_reach_the_panel_and_progress_lines_do_not():
    script = (
        "import json, sys\n"
        "print('Loading model demo 0.2.0', flush=True)\n"
        "print(json.dumps({'progress': 0.5, 'stage': 'ROIs'}), flush=True)\n"
        "print('warning: the lesion touches the border', file=sys.stderr, flush=True)\n"
        "sys.stderr.write('predict:  10%|#   |\\rpredict: 100%|####|\\n')\n"
    )
    process = BackgroundProcess()
    process.start([sys.executable, "-c", script])
    updates = _poll_until_done(process)
    assert updates == [ProgressUpdate(0.5, "ROIs")]
    log = process.take_log()
    assert sorted(log) == sorted(
        ["Loading model demo 0.2.0", "warning: the lesion touches the border", "predict: 100%|####|"]
    )
    assert process.take_log() == []


def test_a_caller_that_polls_until_not_running_gets_the_last_line_of_a_child_that_exits_at_once():
    # The widget's timer: poll, then stop when the run no longer runs, with no extra poll after. A
    # child that exits right after writing leaves its last lines in the pipe for a moment.
    script = (
        "import json, os, sys\n"
        "for i in range(201): sys.stdout.write(json.dumps({'progress': i / 200}) + '\\n')\n"
        "sys.stdout.flush()\n"
        "os._exit(0)\n"
    )
    for _ in range(5):
        process = BackgroundProcess()
        process.start([sys.executable, "-c", script])
        updates = []
        while process.running:
            updates += process.poll()
        assert updates[-1].fraction == 1.0 and len(updates) == 201
        assert process.returncode == 0
