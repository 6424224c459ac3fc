"""The module panel: a thin view over the parameter node; work happens in the logic.

Rules this file keeps (``Testing/mrml/test_slicer_static.py`` checks them):
- every button handler runs inside ``slicer.util.tryWithErrorDisplay`` and restores the buttons in
  a ``finally`` block (``tryWithErrorDisplay`` shows the error, then re-raises);
- widgets bound to the parameter node (``SlicerParameterName``) are never connected to by hand:
  :meth:`onParameterNodeModified` reacts after the connector has stored the value;
- the prediction runs in a background process polled by a timer; the run owns its inputs, so
  leaving the module (``exit``) or closing the panel never breaks it;
- nothing imports torch here: the GPU is read with ``nvidia-smi``.
"""

from __future__ import annotations

import os

import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from BreastSubtypeModuleLib import dependencies, gpu, paths, reloading
from BreastSubtypeModuleLib.logic import BreastSubtypeLogic
from BreastSubtypeModuleLib.parameters import BreastSubtypeParameterNode, Device

try:
    from slicer.i18n import tr as _
except ImportError:

    def _(text: str) -> str:
        return text


POLL_INTERVAL_MS = 200
# Parameters bound by hand, not by SlicerParameterName: their choices come from the model registry.
MANUAL_BINDINGS = {"modelId": "modelComboBox"}


class BreastSubtypeWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic: BreastSubtypeLogic | None = None
        self._parameterNode: BreastSubtypeParameterNode | None = None
        self._parameterNodeGuiTag = None
        self._shown: tuple = ()  # (heatmap id, threshold, opacity) last put on the slice views
        self._phases: list = []
        self._pollTimer = qt.QTimer()
        self._pollTimer.setInterval(POLL_INTERVAL_MS)
        self._pollTimer.timeout.connect(self.onPollPrediction)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/BreastSubtype.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = BreastSubtypeLogic()

        self.ui.heatmapSelector.addAttribute("vtkMRMLScalarVolumeNode", "BreastSubtype.Heatmap", "1")
        # BreastSubtypeMRML.tables.EVIDENCE_ATTRIBUTE (not imported here: nothing heavy at import time)
        self.ui.marginEvidenceTableSelector.addAttribute(
            "vtkMRMLTableNode", "BreastSubtype.MarginEvidence", "1"
        )

        # Buttons and unbound widgets only; bound widgets are read from the parameter node.
        self.ui.loadDemoButton.clicked.connect(self.onLoadDemo)
        self.ui.dceSeriesSelector.currentNodeChanged.connect(self.onSeriesChanged)
        self.ui.usePhaseButton.clicked.connect(self.onUsePhase)
        self.ui.segmentEditorButton.clicked.connect(self.onOpenSegmentEditor)
        self.ui.oneClickButton.clicked.connect(self.onOneClickTumour)
        self.ui.generateRoisButton.clicked.connect(self.onGenerateRois)
        self.ui.installModelButton.clicked.connect(self.onInstallModel)
        self.ui.downloadModelButton.clicked.connect(self.onDownloadModel)
        self.ui.openCacheButton.clicked.connect(self.onOpenCacheFolder)
        self.ui.modelComboBox.currentIndexChanged.connect(self.onModelChanged)
        self.ui.runButton.clicked.connect(self.onRun)
        self.ui.cancelButton.clicked.connect(self.onCancel)
        self.ui.exportReportButton.clicked.connect(self.onExportReport)
        self.ui.tumourSegmentSelector.currentSegmentChanged.connect(self.updateButtons)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()
        self.populateModels()
        self.showDetectedGpu()

    # --- parameter node ------------------------------------------------------------------------

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first and first.GetAttribute("BreastSubtype.Heatmap") != "1":
                self._parameterNode.inputVolume = first

    def setParameterNode(self, parameterNode: BreastSubtypeParameterNode | None) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified
            )
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
            self.onParameterNodeModified()

    def onParameterNodeModified(self, *_args) -> None:
        """After the connectors stored a value: follow the tumour segmentation, refresh the overlay."""
        p = self._parameterNode
        if p is None:
            return
        if self.ui.tumourSegmentSelector.currentNode() != p.tumourSegmentation:
            self.ui.tumourSegmentSelector.setCurrentNode(p.tumourSegmentation)
        self.updateOverlay()
        self.updateButtons()

    def updateButtons(self, *_args) -> None:
        p = self._parameterNode
        running = self.logic.run.running
        hasVolume = bool(p and p.inputVolume)
        self.ui.oneClickButton.enabled = hasVolume and bool(p.seedPoint) and not running
        self.ui.generateRoisButton.enabled = (
            hasVolume
            and bool(p.tumourSegmentation)
            and bool(self.ui.tumourSegmentSelector.currentSegmentID())
        ) and not running
        self.ui.runButton.enabled = hasVolume and bool(p.roiSegmentation) and not running
        self.ui.cancelButton.enabled = running
        self.ui.usePhaseButton.enabled = bool(self._phases) and not running
        self.ui.exportReportButton.enabled = self.logic.reportHtml is not None

    def onReload(self) -> None:
        """Reload BreastSubtypeLib, BreastSubtypeMRML and this package in dependency order first;
        Slicer's own reload then re-executes BreastSubtype.py, which picks up the new classes."""
        reloading.reload_packages()
        ScriptedLoadableModuleWidget.onReload(self)

    def cleanup(self) -> None:
        """Module unloaded or reloaded (Slicer calls this once per widget): stop and release everything."""
        self._pollTimer.stop()
        if self.logic is not None:
            self.logic.cleanup()
        self.setParameterNode(None)
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        # The GUI connection goes; a running prediction does not (it owns its inputs).
        self.setParameterNode(None)

    def onSceneStartClose(self, _caller, _event) -> None:
        self._pollTimer.stop()
        self.logic.cancelPrediction()
        self.setParameterNode(None)

    def onSceneEndClose(self, _caller, _event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    # --- inputs --------------------------------------------------------------------------------

    def onLoadDemo(self) -> None:
        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to load the demo case."), waitCursor=True):
                from BreastSubtypeModuleLib import sampledata

                volume, tumour = sampledata.load_demo_case()  # shipped files: no download, no torch
                segmentId = self.logic.fileDemoCase(volume, tumour)
                p = self.logic.getParameterNode()
                p.inputVolume = volume
                p.tumourSegmentation = tumour
                self.ui.tumourSegmentSelector.setCurrentSegmentID(segmentId)
                slicer.util.setSliceViewerLayers(background=volume, fit=True)
                self.setStatus(_("Demo phantom loaded (synthetic data). Next: Generate ROIs."))
        finally:
            self.updateButtons()

    def onSeriesChanged(self, node) -> None:
        """List the phases of the chosen DCE series; the first post-contrast one is preselected."""
        from BreastSubtypeMRML import phases

        combo = self.ui.phaseComboBox
        combo.clear()
        self._phases = self.logic.seriesPhases(node) if phases.is_dce_series(node) else []
        for phase in self._phases:
            combo.addItem(phase.label)
        if self._phases:
            combo.setCurrentIndex(phases.default_phase(self._phases))
        combo.enabled = bool(self._phases)
        self.updateButtons()

    def onUsePhase(self) -> None:
        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to extract the phase."), waitCursor=True):
                series = self.ui.dceSeriesSelector.currentNode()
                phase = self._phases[self.ui.phaseComboBox.currentIndex]
                volume = self.logic.usePhase(series, phase)
                self.logic.getParameterNode().inputVolume = volume
                slicer.util.setSliceViewerLayers(background=volume, fit=True)
        finally:
            self.updateButtons()

    def onOpenSegmentEditor(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to open the Segment Editor."), waitCursor=True):
            p = self.logic.getParameterNode()
            if not p.inputVolume:
                raise ValueError(_("Select the post-contrast volume first."))
            if not p.tumourSegmentation:
                from BreastSubtypeMRML import segments

                p.tumourSegmentation = segments.new_segmentation_node(
                    slicer.mrmlScene, f"{p.inputVolume.GetName()} tumour", p.inputVolume
                )
            segmentation = p.tumourSegmentation.GetSegmentation()
            if segmentation.GetNumberOfSegments() == 0:
                segmentation.AddEmptySegment("tumour", _("tumour"))
            slicer.util.selectModule("SegmentEditor")
            editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
            editor.setSegmentationNode(p.tumourSegmentation)
            editor.setSourceVolumeNode(p.inputVolume)

    def onOneClickTumour(self) -> None:
        try:
            with slicer.util.tryWithErrorDisplay(
                _("Failed to segment the tumour from the point."), waitCursor=True
            ):
                if not self.ensureDependencies("regions"):
                    return
                p = self.logic.getParameterNode()
                node, segmentId, result = self.logic.segmentTumourFromSeed(
                    p.inputVolume, p.seedPoint, p.tumourBox, p.tumourSegmentation
                )
                p.tumourSegmentation = node
                self.ui.tumourSegmentSelector.setCurrentSegmentID(segmentId)
                self.setStatus(_("Tumour: {volume:.2f} ml.").format(volume=result.volume_ml), result.warnings)
        finally:
            self.updateButtons()

    def onGenerateRois(self) -> None:
        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to generate the ROIs."), waitCursor=True):
                if not self.ensureDependencies("regions"):
                    return
                p = self.logic.getParameterNode()
                node, result = self.logic.generateRois(
                    p.inputVolume,
                    p.tumourSegmentation,
                    self.ui.tumourSegmentSelector.currentSegmentID(),
                    p.rim_mm,
                    p.peri_mm,
                    p.roiSegmentation,
                )
                p.roiSegmentation = node
                volumes = ", ".join(f"{name} {ml:.2f} ml" for name, ml in result.volumes_ml.items())
                self.setStatus(_("ROIs: {volumes}.").format(volumes=volumes), result.warnings)
        finally:
            self.updateButtons()

    # --- model ---------------------------------------------------------------------------------

    def populateModels(self) -> None:
        """Registry entries into the combo box (item data = model id); keeps the chosen one."""
        try:
            from BreastSubtypeLib.model import registry

            entries = registry.list_models()
        except Exception as exc:  # a broken registry must not break the module panel
            self.setStatus(_("Model registry unavailable: {error}").format(error=exc))
            entries = []
        combo = self.ui.modelComboBox
        combo.blockSignals(True)
        combo.clear()
        for entry in entries:
            state = _("installed") if entry.builtin or registry.is_installed(entry) else _("not downloaded")
            suffix = _(" - demonstration") if entry.demonstration else ""
            combo.addItem(f"{entry.title} {entry.version} ({state}){suffix}", entry.id)
        wanted = self._parameterNode.modelId if self._parameterNode else "demo"
        combo.setCurrentIndex(max(combo.findData(wanted), 0))
        combo.blockSignals(False)

    def onModelChanged(self, index: int) -> None:
        if self._parameterNode and index >= 0:
            self._parameterNode.modelId = self.ui.modelComboBox.itemData(index)

    def onInstallModel(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to install the model package."), waitCursor=True):
            path = qt.QFileDialog.getOpenFileName(
                slicer.util.mainWindow(), _("Install model package"), "", _("Model package (*.zip)")
            )
            if not path:
                return
            from BreastSubtypeLib.model import registry

            registry.install_from_file(path)
            self.populateModels()

    def onDownloadModel(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to download the model."), waitCursor=True):
            from BreastSubtypeLib.model import registry

            entry = registry.get_entry(self.logic.getParameterNode().modelId)
            if entry.builtin or registry.is_installed(entry):
                self.setStatus(_("{title} is already available.").format(title=entry.title))
                return
            registry.download(entry.id)
            self.populateModels()

    def onOpenCacheFolder(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to open the model cache folder."), waitCursor=False):
            from BreastSubtypeLib.model import registry

            folder = registry.cache_dir()
            folder.mkdir(parents=True, exist_ok=True)
            qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(folder)))

    def showDetectedGpu(self) -> None:
        """Name the GPU next to the device choice (nvidia-smi: torch is not imported here)."""
        found = gpu.detect_gpu()
        if found is None:
            self.ui.deviceInfoLabel.text = _("No NVIDIA GPU detected: Auto runs on the CPU.")
            return
        self.ui.deviceInfoLabel.text = _("Detected GPU: {name}, {free} of {total} MB free.").format(
            name=found.name, free=found.free_mb, total=found.total_mb
        )

    def ensureDependencies(self, action: str) -> bool:
        """One question listing exactly what ``action`` needs installed (nothing when all is there)."""
        return dependencies.ensure(
            action, slicer.util.confirmOkCancelDisplay, paths.resource("requirements.txt")
        )

    # --- prediction ----------------------------------------------------------------------------

    def onRun(self) -> None:
        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to start the prediction."), waitCursor=True):
                if not self.ensureDependencies("prediction"):
                    return
                p = self.logic.getParameterNode()
                decision = gpu.decide_device(
                    p.device.value, gpu.detect_gpu() if p.device != Device.CPU else None
                )
                self.ui.processLogTextEdit.clear()
                self.logic.startPrediction(
                    p.inputVolume,
                    p.roiSegmentation,
                    p.modelId,
                    decision.device,
                    p.rim_mm,
                    p.peri_mm,
                    work_root=slicer.app.temporaryPath,
                )
                self.ui.progressBar.value = 0
                self.setStatus(decision.message or _("Prediction started..."))
                self._pollTimer.start()
        finally:
            self.updateButtons()

    def onCancel(self) -> None:
        try:
            with slicer.util.tryWithErrorDisplay(_("Failed to cancel the prediction."), waitCursor=True):
                self._pollTimer.stop()
                self.logic.cancelPrediction()
                self.setStatus(_("Prediction cancelled."))
        finally:
            self.updateButtons()

    def onPollPrediction(self) -> None:
        updates, log = self.logic.run.poll()
        for update in updates:
            self.ui.progressBar.value = int(round(update.fraction * 100))
            self.setStatus(update.stage)
        for line in log:
            self.ui.processLogTextEdit.appendPlainText(line)
        if self.logic.run.running:
            return
        self._pollTimer.stop()
        try:
            with slicer.util.tryWithErrorDisplay(_("The prediction failed."), waitCursor=True):
                self.showResults()
        finally:
            self.updateButtons()

    def showResults(self) -> None:
        # The parameter node of the scene, not self._parameterNode: the panel may have been left.
        p = self.logic.getParameterNode()
        finished = self.logic.finishPrediction(p.heatmapThreshold)
        if finished is None:
            return  # cancelled
        from BreastSubtypeLib.reports.margin_section import evidence_legend

        case = finished.case
        p.resultsTable = case.table_node
        # Each call's strongest margin numbers: their own collapsed panel, left as the user set it.
        p.marginEvidenceTable = case.evidence_table_node
        if case.heatmap_nodes:
            p.heatmapVolume = next(iter(case.heatmap_nodes.values()))
        demonstration = bool((case.prediction.get("model") or {}).get("demonstration"))
        self.ui.demonstrationWarningLabel.visible = demonstration
        self.ui.marginEvidenceLegendLabel.text = (
            evidence_legend(demonstration)
            if case.evidence_table_node is not None
            else _("This model reports no margin-profile evidence for this case.")
        )
        self.ui.progressBar.value = 100
        self.setStatus(_("Prediction finished."), case.prediction.get("warnings"))

    def updateOverlay(self) -> None:
        """Put the chosen heatmap on the slice views; a slider tick changes only what it controls."""
        p = self._parameterNode
        if not p or not p.heatmapVolume:
            self._shown = ()
            return
        from BreastSubtypeMRML import heatmaps

        shown = (p.heatmapVolume.GetID(), p.heatmapThreshold, p.heatmapOpacity)
        if shown == self._shown:
            return
        previous = self._shown or (None, None, None)
        if shown[0] != previous[0] or shown[1] != previous[1]:
            heatmaps.set_heatmap_threshold(p.heatmapVolume, p.heatmapThreshold)
        if shown[0] != previous[0]:
            heatmaps.show_overlay(slicer.mrmlScene, p.inputVolume, p.heatmapVolume, p.heatmapOpacity)
        elif shown[2] != previous[2]:
            heatmaps.set_overlay_opacity(slicer.mrmlScene, p.heatmapOpacity)
        self._shown = shown

    def onExportReport(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to export the report."), waitCursor=True):
            path = qt.QFileDialog.getSaveFileName(
                slicer.util.mainWindow(), _("Export report"), "BreastSubtype-report.html", _("HTML (*.html)")
            )
            if not path:
                return
            from BreastSubtypeLib.atomic import write_bytes_atomic

            write_bytes_atomic(path, self.logic.reportHtml)
            self.setStatus(_("Report saved to {path}.").format(path=os.path.basename(path)))

    def setStatus(self, text: str, warnings=None) -> None:
        lines = [text] + [f"\u26a0 {w}" for w in (warnings or [])]
        self.ui.statusLabel.text = "\n".join(line for line in lines if line)
