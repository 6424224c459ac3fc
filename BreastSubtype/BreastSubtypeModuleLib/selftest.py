"""Self-test run inside Slicer ("Reload and Test", or ctest ``py_BreastSubtype``): the demo end to end.

It sets up what it needs (installs missing dependencies without asking: the test's confirmation is
its own; loads the phantom through Sample Data), runs the real background prediction and polls it
while processing Qt events, so the GUI stays responsive; exact checks where geometry allows.
"""

from __future__ import annotations

import time

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

PREDICTION_TIMEOUT_S = 600
POLL_S = 0.05


class BreastSubtypeTest(ScriptedLoadableModuleTest):
    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_demo_case_to_results()

    def waitForPrediction(self, logic):
        """Poll the child like the widget's timer does: events keep flowing, nothing blocks."""
        deadline = time.monotonic() + PREDICTION_TIMEOUT_S
        while logic.run.running:
            if time.monotonic() > deadline:
                logic.cancelPrediction()
                self.fail(f"The prediction took more than {PREDICTION_TIMEOUT_S} s.")
            logic.run.poll()
            slicer.app.processEvents()
            time.sleep(POLL_S)
        return logic.finishPrediction()

    def test_demo_case_to_results(self) -> None:
        import numpy as np
        import SimpleITK as sitk

        from BreastSubtypeModuleLib import dependencies, paths, sampledata
        from BreastSubtypeModuleLib.logic import BreastSubtypeLogic

        self.delayDisplay("Installing missing dependencies (if any)")
        self.assertTrue(
            dependencies.ensure("prediction", lambda _question: True, paths.resource("requirements.txt"))
        )
        from BreastSubtypeMRML import segments, tables, volumes

        self.delayDisplay("Loading the demo phantom from Sample Data")
        sampledata.register()
        volume, tumour = sampledata.load_demo_case()
        logic = BreastSubtypeLogic()
        segmentId = logic.fileDemoCase(volume, tumour)
        self.assertEqual(volumes.array_from_volume_node(volume).shape, (48, 128, 128))
        self.assertEqual(tuple(round(s, 6) for s in volume.GetSpacing()), (0.7, 0.7, 1.5))

        self.delayDisplay("Generating core, rim and peritumoral segments")
        rois, result = logic.generateRois(volume, tumour, segmentId, 3.0, 5.0)
        labels = segments.roi_labelmap_from_segmentation(slicer.mrmlScene, rois, volume)
        np.testing.assert_array_equal(sitk.GetArrayFromImage(labels), sitk.GetArrayFromImage(result.labelmap))

        self.delayDisplay("Running the prediction in the background")
        logic.startPrediction(volume, rois, "demo", "auto", work_root=slicer.app.temporaryPath)
        workDir = logic.run.work_dir
        finished = self.waitForPrediction(logic)
        self.assertIsNotNone(finished, logic.run.error_message())
        self.assertFalse(workDir.exists(), "the temporary folder with patient voxels was left behind")
        case = finished.case

        rows = {row[0]: row for row in tables.table_rows(case.table_node)}
        for finding in (
            "ER probability",
            "PR probability",
            "HER2 probability",
            "Ki-67 (%)",
            "Surrogate subtype",
        ):
            self.assertIn(finding, rows)
        self.assertTrue(0.0 <= float(rows["ER probability"][1]) <= 1.0)
        warnings = [row[1] for row in tables.table_rows(case.table_node) if row[0] == "Warning"]
        self.assertIn(tables.DEMONSTRATION_WARNING, warnings)  # the demo model is trained on phantoms
        fused = case.heatmap_nodes["Attention (fused)"]
        self.assertEqual(fused.GetOrigin(), volume.GetOrigin())
        self.assertEqual(fused.GetSpacing(), volume.GetSpacing())
        self.assertIsNotNone(logic.reportHtml)
        self.delayDisplay("Test passed")
