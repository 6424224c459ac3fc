"""Progress reporting shared by every front end.

Library functions take ``progress: ProgressCallback | None`` and call it with a fraction in [0, 1]
and a short stage text. The CLI shows a tqdm bar; with ``--progress-json`` it prints one JSON line
per update on stdout (``progress_line``), which the Slicer module's background-process runner and
the web app read back with ``parse_progress_line``: the format is written and read here only.

>>> parse_progress_line(progress_line(0.42, "network"))
ProgressUpdate(fraction=0.42, stage='network')
>>> parse_progress_line("epoch 1: train loss 0.7") is None
True
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

ProgressCallback = Callable[[float, str], None]
T = TypeVar("T")


def report(progress: ProgressCallback | None, fraction: float, stage: str) -> None:
    if progress is not None:
        progress(min(max(float(fraction), 0.0), 1.0), stage)


def scaled(progress: ProgressCallback | None, start: float, stop: float) -> ProgressCallback | None:
    """A callback for a sub-step that fills ``[start, stop]`` of the parent's range."""
    if progress is None:
        return None
    return lambda fraction, stage: progress(start + (stop - start) * fraction, stage)


def iterate(items: Iterable[T], total: int, progress: ProgressCallback | None, stage: str) -> Iterator[T]:
    for index, item in enumerate(items):
        report(progress, index / max(total, 1), stage)
        yield item
    report(progress, 1.0, stage)


@dataclass(frozen=True)
class ProgressUpdate:
    fraction: float  # in [0, 1]
    stage: str


def progress_line(fraction: float, stage: str) -> str:
    """One machine-readable progress line: ``{"progress": 0.42, "stage": "..."}``."""
    return json.dumps({"progress": round(float(fraction), 4), "stage": stage})


def parse_progress_line(line: str | bytes) -> ProgressUpdate | None:
    """The update in a line of a child's stdout, or None for any other line (text, results, noise)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
        fraction = float(data["progress"])
    except (ValueError, TypeError, KeyError):
        return None
    if fraction != fraction:  # NaN
        return None
    return ProgressUpdate(min(max(fraction, 0.0), 1.0), str(data.get("stage", "")))


def json_lines_progress(stream=None) -> ProgressCallback:
    """Machine-readable progress for a parent process: one ``progress_line`` per update."""
    stream = stream or sys.stdout

    def _emit(fraction: float, stage: str) -> None:
        stream.write(progress_line(fraction, stage) + "\n")
        stream.flush()

    return _emit


class TqdmProgress:
    """A tqdm bar on stderr driven by fractions (0-100 %), closed with ``close()``."""

    def __init__(self, description: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=100,
            desc=description,
            unit="%",
            file=sys.stderr,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}",
            leave=False,
            disable=None,
        )
        self._last = 0

    def __call__(self, fraction: float, stage: str) -> None:
        value = int(round(fraction * 100))
        if value > self._last:
            self._bar.update(value - self._last)
            self._last = value
        self._bar.set_postfix_str(stage, refresh=True)

    def close(self) -> None:
        self._bar.close()
