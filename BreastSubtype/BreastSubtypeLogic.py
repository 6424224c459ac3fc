"""Module logic: usable from the Python console and the self-test without the GUI.

No qt, ctk or ``slicer.app`` here. The steps themselves live in ``BreastSubtypeMRML.pipeline``
(shared with the web app); this class binds them to ``slicer.mrmlScene`` and the parameter node and
owns the background prediction process.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import slicer
from BreastSubtypeParameters import BreastSubtypeParameterNode
from BreastSubtypeProcess import BackgroundProcess, ProcessRunner
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic


def python_slicer_executable() -> str:
    """The interpreter that runs the CLI: Slicer's own Python, so it sees the same packages."""
    return shutil.which("PythonSlicer") or sys.executable


class BreastSubtypeLogic(ScriptedLoadableModuleLogic):
    def __init__(self, process: ProcessRunner | None = None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.process: ProcessRunner = process or BackgroundProcess()
        self._workDir: Path | None = None
        self._outDir: Path | None = None

    def getParameterNode(self) -> BreastSubtypeParameterNode:
        return BreastSubtypeParameterNode(super().getParameterNode())

    # --- steps ---------------------------------------------------------------------------------

    def loadDemoCase(self, seed: int = 1):
        """A synthetic post-contrast phantom and its tumour segment, made locally (no download)."""
        from BreastSubtypeLib.phantom import generate_phantom
        from BreastSubtypeMRML import hierarchy, pipeline, segments, volumes

        case = generate_phantom(seed, size_ijk=(128, 128, 48))
        volume = volumes.volume_node_from_sitk(slicer.mrmlScene, case.image, f"Demo phantom {seed}")
        tumour = segments.new_segmentation_node(slicer.mrmlScene, f"{volume.GetName()} tumour", volume)
        segmentId = segments.set_tumour_segment(slicer.mrmlScene, tumour, case.tumour_mask)
        hierarchy.place_in_folder(slicer.mrmlScene, pipeline.results_folder(slicer.mrmlScene, volume), tumour)
        return volume, tumour, segmentId

    def segmentTumourFromSeed(self, volumeNode, seedNode, boxNode=None, segmentationNode=None):
        """One-click tumour from the first control point (RAS) and an optional ROI box."""
        from BreastSubtypeMRML import pipeline

        if seedNode is None or seedNode.GetNumberOfControlPoints() == 0:
            raise ValueError("Place a point inside the lesion first.")
        seed = [0.0, 0.0, 0.0]
        seedNode.GetNthControlPointPositionWorld(0, seed)
        box = None
        if boxNode is not None:
            bounds = [0.0] * 6
            boxNode.GetRASBounds(bounds)
            box = ((bounds[0], bounds[2], bounds[4]), (bounds[1], bounds[3], bounds[5]))
        return pipeline.one_click_tumour(slicer.mrmlScene, volumeNode, seed, box, segmentationNode)

    def generateRois(
        self, volumeNode, tumourSegmentationNode, segmentId, rim_mm, peri_mm, roiSegmentationNode=None
    ):
        from BreastSubtypeMRML import pipeline

        return pipeline.generate_rois(
            slicer.mrmlScene,
            volumeNode,
            tumourSegmentationNode,
            segmentId,
            rim_mm,
            peri_mm,
            roiSegmentationNode,
        )

    # --- background prediction -----------------------------------------------------------------

    def startPrediction(
        self,
        volumeNode,
        roiSegmentationNode,
        modelId: str,
        device: str,
        rim_mm: float | None = None,
        peri_mm: float | None = None,
    ) -> Path:
        """Export the inputs and start ``breast-subtype predict`` in the background; returns the output folder.

        The CLI gets the reviewed core/rim/peritumoral segments as they are (``--rois``), so the
        radiologist's edits reach the model; the widths matter only for a bare tumour segment.
        """
        from BreastSubtypeMRML import pipeline

        self.cleanup()
        self._workDir = Path(tempfile.mkdtemp(prefix="BreastSubtype-"))
        inputs = pipeline.export_prediction_inputs(
            slicer.mrmlScene, volumeNode, roiSegmentationNode, self._workDir / "inputs"
        )
        self._outDir = self._workDir / "outputs"
        command = pipeline.prediction_command(
            inputs,
            self._outDir,
            model=modelId,
            device=device,
            rim_mm=rim_mm,
            peri_mm=peri_mm,
            python=python_slicer_executable(),
        )
        self.process.start(command)
        return self._outDir

    def predictionError(self) -> str:
        """The CLI's one-line error (its last stderr line), for the user."""
        lines = [line for line in self.process.error_text.splitlines() if line.strip()]
        return (
            lines[-1] if lines else f"The prediction process stopped with status {self.process.returncode}."
        )

    def importPrediction(self, volumeNode, roiSegmentationNode, thresholdFraction: float = 0.2):
        from BreastSubtypeMRML import results

        return results.import_case_outputs(
            slicer.mrmlScene,
            self._outDir,
            volumeNode,
            folder_name=f"BreastSubtype {volumeNode.GetName()}",
            roi_segmentation_node=roiSegmentationNode,
            threshold_fraction=thresholdFraction,
        )

    @property
    def outputFolder(self) -> Path | None:
        return self._outDir

    def cancelPrediction(self) -> None:
        self.process.cancel()

    def cleanup(self) -> None:
        """Remove the previous run's temporary folder (inputs hold patient voxels)."""
        if self._workDir is not None:
            shutil.rmtree(self._workDir, ignore_errors=True)
        self._workDir = self._outDir = None
