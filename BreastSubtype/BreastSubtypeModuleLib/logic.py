"""Module logic: usable from the Python console and the self-test without the GUI.

No qt, ctk or ``slicer.app`` here. The steps live in ``BreastSubtypeMRML.pipeline`` (shared with
the web app) and the background run in :mod:`BreastSubtypeModuleLib.prediction`; this class binds
them to ``slicer.mrmlScene`` and the parameter node.
"""

from __future__ import annotations

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleLogic

from BreastSubtypeModuleLib.parameters import BreastSubtypeParameterNode
from BreastSubtypeModuleLib.prediction import Finished, PredictionRun
from BreastSubtypeModuleLib.process import ProcessRunner


class BreastSubtypeLogic(ScriptedLoadableModuleLogic):
    def __init__(self, process: ProcessRunner | None = None, work_root: str | None = None) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.run = PredictionRun(process, work_root)
        self.reportHtml: bytes | None = None

    def getParameterNode(self) -> BreastSubtypeParameterNode:
        return BreastSubtypeParameterNode(super().getParameterNode())

    # --- inputs --------------------------------------------------------------------------------

    def fileDemoCase(self, volume, tumour) -> str:
        """File the demo phantom's tumour under the volume's results folder; returns its segment id."""
        from BreastSubtypeMRML import hierarchy, pipeline, segments

        hierarchy.place_in_folder(slicer.mrmlScene, pipeline.results_folder(slicer.mrmlScene, volume), tumour)
        tumour.SetReferenceImageGeometryParameterFromVolumeNode(volume)
        if tumour.GetSegmentation().GetSegment(segments.TUMOUR_SEGMENT_ID) is None:
            raise ValueError(f"'{tumour.GetName()}' has no '{segments.TUMOUR_SEGMENT_ID}' segment.")
        return segments.TUMOUR_SEGMENT_ID

    def seriesPhases(self, seriesNode):
        from BreastSubtypeMRML import phases

        return phases.series_phases(seriesNode)

    def usePhase(self, seriesNode, phase):
        """The chosen phase of a DCE series as a scalar volume, filed beside the series."""
        from BreastSubtypeMRML import hierarchy, phases

        volume = phases.extract_phase(slicer.mrmlScene, seriesNode, phase)
        sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        parent = sh.GetItemParent(hierarchy.item_of(slicer.mrmlScene, seriesNode))
        hierarchy.place_in_folder(slicer.mrmlScene, parent, volume)
        return volume

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

    def startPrediction(self, volumeNode, roiSegmentationNode, modelId: str, device: str, rim_mm=None, peri_mm=None,
                        work_root=None) -> None:  # fmt: skip
        """Export the inputs and start ``predict`` in the background (poll ``self.run``)."""
        if work_root is not None:
            self.run.work_root = work_root
        self.reportHtml = None
        self.run.start(
            slicer.mrmlScene,
            volumeNode,
            roiSegmentationNode,
            model=modelId,
            device=device,
            rim_mm=rim_mm,
            peri_mm=peri_mm,
        )

    def finishPrediction(self, thresholdFraction: float = 0.2) -> Finished | None:
        """Import the finished run's outputs (None when cancelled); its temporary folder is removed."""
        finished = self.run.finish(slicer.mrmlScene, thresholdFraction)
        if finished is not None:
            self.reportHtml = finished.report_html
        return finished

    def cancelPrediction(self) -> None:
        self.run.cancel()

    def cleanup(self) -> None:
        self.run.cancel()
