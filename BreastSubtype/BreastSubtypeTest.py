"""Self-test run inside Slicer (Developer mode "Reload and Test", or ctest): the whole workflow on
the demo phantom, through the real background process, with exact checks where geometry allows."""

from __future__ import annotations

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest


class BreastSubtypeTest(ScriptedLoadableModuleTest):
    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_demo_case_to_results()

    def test_demo_case_to_results(self) -> None:
        import numpy as np
        import SimpleITK as sitk
        from BreastSubtypeLogic import BreastSubtypeLogic

        from BreastSubtypeMRML import segments, tables, volumes

        self.delayDisplay("Making the demo phantom")
        logic = BreastSubtypeLogic()
        volume, tumour, segmentId = logic.loadDemoCase(seed=3)
        self.assertEqual(volumes.array_from_volume_node(volume).shape, (48, 128, 128))

        self.delayDisplay("Generating core, rim and peritumoral segments")
        rois, result = logic.generateRois(volume, tumour, segmentId, 3.0, 5.0)
        labels = segments.roi_labelmap_from_segmentation(slicer.mrmlScene, rois, volume)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(labels), sitk.GetArrayFromImage(result.labelmap))

        self.delayDisplay("Running the prediction in the background")
        logic.startPrediction(volume, rois, "demo", "auto")
        returnCode = logic.process.wait(timeout=600)
        self.assertEqual(returnCode, 0, logic.predictionError())
        case = logic.importPrediction(volume, rois)

        rows = dict((row[0], row) for row in tables.table_rows(case.table_node))
        for finding in (
            "ER probability",
            "PR probability",
            "HER2 probability",
            "Ki-67 (%)",
            "Surrogate subtype",
        ):
            self.assertIn(finding, rows)
        self.assertTrue(0.0 <= float(rows["ER probability"][1]) <= 1.0)
        self.assertIn("Attention (fused)", case.heatmap_nodes)
        fused = case.heatmap_nodes["Attention (fused)"]
        self.assertEqual(fused.GetOrigin(), volume.GetOrigin())
        self.assertEqual(fused.GetSpacing(), volume.GetSpacing())
        logic.cleanup()
        self.delayDisplay("Test passed")
