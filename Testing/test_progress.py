"""Progress lines: what the CLI prints with --progress-json is what the Slicer module and web app read."""

from __future__ import annotations

import io
import math

import pytest

from BreastSubtypeLib.progress import ProgressUpdate, json_lines_progress, parse_progress_line


def test_every_line_the_cli_writes_reads_back_as_the_same_update():
    stream = io.StringIO()
    emit = json_lines_progress(stream)
    emit(0.0, "checking input")
    emit(0.123456, "core, rim and peritumoral regions")
    emit(1.0, "done")
    updates = [parse_progress_line(line) for line in stream.getvalue().splitlines()]
    assert updates == [
        ProgressUpdate(0.0, "checking input"),
        ProgressUpdate(0.1235, "core, rim and peritumoral regions"),
        ProgressUpdate(1.0, "done"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        "epoch 1: train loss 0.7",
        '{"done": true, "report": "out/report.html"}',
        '{"progress": "half"}',
        '{"progress": NaN}',
        "[0.5]",
        "{not json",
        "",
    ],
)
def test_other_lines_are_not_progress(line):
    assert parse_progress_line(line) is None


def test_bytes_from_a_pipe_are_read_and_fractions_clamped():
    assert parse_progress_line(b'{"progress": 1.5, "stage": "network"}\n') == ProgressUpdate(1.0, "network")
    update = parse_progress_line('  {"progress": -0.2}  ')
    assert update == ProgressUpdate(0.0, "") and not math.isnan(update.fraction)
