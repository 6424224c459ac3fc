"""One background prediction, from scene nodes to result nodes, independent of the GUI.

The run remembers the IDs of its input nodes and its own temporary folder, so it finishes
correctly even when the module panel was left (``exit()`` releases the parameter node) or the
parameter node changed meanwhile. The folder holds patient voxels: it is removed as soon as the
outputs are imported, on failure and on cancel, and folders left by a crashed Slicer are swept at
the next start. No qt and no ``slicer.app`` here: tested with the ``slicer-core`` wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from BreastSubtypeModuleLib import paths
from BreastSubtypeModuleLib.process import (
    BackgroundProcess,
    ProcessRunner,
    ProgressUpdate,
    python_slicer_executable,
)

WORK_DIR_PREFIX = "BreastSubtype-run-"
_WORK_DIR = re.compile(re.escape(WORK_DIR_PREFIX) + r"(\d+)-")


class PredictionError(RuntimeError):
    """The prediction process failed; the message is its one-line error."""


def _pid_alive(pid: int) -> bool:
    try:
        import psutil

        return psutil.pid_exists(pid)
    except ImportError:
        pass
    if sys.platform == "win32":
        return True  # cannot tell without psutil: keep the folder
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_work_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """Remove run folders whose Slicer process is gone (a crash or a kill); returns those removed."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for folder in root.glob(f"{WORK_DIR_PREFIX}*"):
        match = _WORK_DIR.match(folder.name)
        if (
            folder.is_dir()
            and match
            and int(match.group(1)) != os.getpid()
            and not _pid_alive(int(match.group(1)))
        ):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@dataclass
class Finished:
    """What a successful run added to the scene, and the report to export."""

    case: object  # BreastSubtypeMRML.results.CaseNodes
    report_html: bytes | None


class PredictionRun:
    """Export inputs, run ``predict`` in a child process, import its outputs; at most one at a time."""

    def __init__(
        self, process: ProcessRunner | None = None, work_root: str | os.PathLike | None = None
    ) -> None:
        self.process: ProcessRunner = process or BackgroundProcess()
        self.work_root = Path(work_root or tempfile.gettempdir())
        self._work_dir: Path | None = None
        self._volume_id: str | None = None
        self._rois_id: str | None = None

    @property
    def running(self) -> bool:
        return self.process.running

    @property
    def work_dir(self) -> Path | None:
        return self._work_dir

    def start(
        self,
        scene,
        volume_node,
        roi_segmentation_node,
        *,
        model: str,
        device: str,
        rim_mm: float | None = None,
        peri_mm: float | None = None,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        from BreastSubtypeMRML import pipeline

        if self.process.running:
            raise RuntimeError("A prediction is already running.")
        if volume_node is None or roi_segmentation_node is None:
            raise ValueError("Choose the post-contrast volume and generate the ROIs first.")
        self.cleanup()
        self.work_root.mkdir(parents=True, exist_ok=True)
        self._work_dir = Path(tempfile.mkdtemp(prefix=f"{WORK_DIR_PREFIX}{os.getpid()}-", dir=self.work_root))
        try:
            inputs = pipeline.export_prediction_inputs(
                scene, volume_node, roi_segmentation_node, self._work_dir / "inputs"
            )
            command = pipeline.prediction_command(
                inputs,
                self._work_dir / "outputs",
                model=model,
                device=device,
                rim_mm=rim_mm,
                peri_mm=peri_mm,
                python=python or python_slicer_executable(),
            )
            self.process.start(command, env=paths.child_environment(env))
        except BaseException:
            self.cleanup()
            raise
        self._volume_id = volume_node.GetID()
        self._rois_id = roi_segmentation_node.GetID()

    def poll(self) -> tuple[list[ProgressUpdate], list[str]]:
        """Progress and log lines since the last call (never blocks)."""
        return self.process.poll(), self.process.take_log()

    def finish(self, scene, threshold_fraction: float = 0.2) -> Finished | None:
        """After the child exited: import its outputs (None if it was cancelled); the folder goes either way."""
        from BreastSubtypeMRML import results

        try:
            if self.process.cancelled:
                return None
            if self.process.returncode != 0:
                raise PredictionError(self.error_message())
            volume = scene.GetNodeByID(self._volume_id) if self._volume_id else None
            if volume is None:
                raise PredictionError("The input volume was removed from the scene while the prediction ran.")
            rois = scene.GetNodeByID(self._rois_id) if self._rois_id else None
            out_dir = self._work_dir / "outputs"
            case = results.import_case_outputs(
                scene,
                out_dir,
                volume,
                folder_name=f"BreastSubtype {volume.GetName()}",
                roi_segmentation_node=rois,
                threshold_fraction=threshold_fraction,
            )
            report = out_dir / "report.html"
            return Finished(case, report.read_bytes() if report.is_file() else None)
        finally:
            self.cleanup()

    def error_message(self) -> str:
        """The CLI's one-line error (its last stderr line), for the user."""
        lines = [line for line in self.process.error_text.splitlines() if line.strip()]
        return (
            lines[-1] if lines else f"The prediction process stopped with status {self.process.returncode}."
        )

    def cancel(self) -> None:
        self.process.cancel()
        self.cleanup()

    def cleanup(self) -> None:
        """Remove this run's folder (inputs hold patient voxels); never while the child still reads it."""
        if self.process.running:
            return
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
        self._work_dir = None
