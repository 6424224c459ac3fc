"""The background-process runner, run with a plain python child (as Slicer runs PythonSlicer)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "BreastSubtype"))
from BreastSubtypeProcess import BackgroundProcess, ProgressUpdate, parse_progress_line  # noqa: E402


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
