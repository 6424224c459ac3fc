"""The module panel: a thin view over the parameter node; work happens in the logic.

Every button handler runs inside ``slicer.util.tryWithErrorDisplay`` so a problem reaches the user
as one readable message. The prediction runs in a background process polled by a timer: the GUI
never waits for it.
"""

from __future__ import annotations

import os

import qt
import slicer
import vtk
from BreastSubtypeLogic import BreastSubtypeLogic
from BreastSubtypeParameters import BreastSubtypeParameterNode, Device
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

try:
    from slicer.i18n import tr as _
except ImportError:

    def _(text: str) -> str:
        return text


POLL_INTERVAL_MS = 200
# Developer "Reload" must also reload these (parents last); Slicer itself reloads only BreastSubtype.py.
RELOAD_PREFIXES = ("BreastSubtypeLib.", "BreastSubtypeMRML.")
RELOAD_MODULES = (
    "BreastSubtypeParameters",
    "BreastSubtypeProcess",
    "BreastSubtypeDependencies",
    "BreastSubtypeLogic",
    "BreastSubtypeTest",
    "BreastSubtypeWidget",
)
# Parameters bound by hand, not by SlicerParameterName: their choices come from the model registry.
MANUAL_BINDINGS = {"modelId": "modelComboBox"}


class BreastSubtypeWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic: BreastSubtypeLogic | None = None
        self._parameterNode: BreastSubtypeParameterNode | None = None
        self._parameterNodeGuiTag = None
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
        self.ui.tumourSegmentationSelector.connect(
            "currentNodeChanged(vtkMRMLNode*)", self.ui.tumourSegmentSelector.setCurrentNode
        )

        self.ui.loadDemoButton.clicked.connect(self.onLoadDemo)
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
        self.ui.heatmapSelector.currentNodeChanged.connect(lambda _node: self.updateOverlay())
        self.ui.heatmapOpacitySlider.valueChanged.connect(lambda _value: self.updateOverlay())
        self.ui.heatmapThresholdSlider.valueChanged.connect(lambda _value: self.updateOverlay())

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
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
            self.updateButtons()

    def updateButtons(self, *_args) -> None:
        p = self._parameterNode
        running = self.logic.process.running
        hasVolume = bool(p and p.inputVolume)
        self.ui.oneClickButton.enabled = hasVolume and bool(p.seedPoint) and not running
        self.ui.generateRoisButton.enabled = (
            hasVolume
            and bool(p.tumourSegmentation)
            and bool(self.ui.tumourSegmentSelector.currentSegmentID())
        ) and not running
        self.ui.runButton.enabled = hasVolume and bool(p.roiSegmentation) and not running
        self.ui.cancelButton.enabled = running
        self.ui.exportReportButton.enabled = bool(
            self.logic.outputFolder and (self.logic.outputFolder / "report.html").is_file()
        )

    def onReload(self) -> None:
        """importlib.reload (the ``imp`` module is gone in Python 3.12) of the Lib and sibling files."""
        import importlib
        import sys

        self.cleanup()
        own = sorted(name for name in sys.modules if name.startswith(RELOAD_PREFIXES))
        for name in (*own, *RELOAD_MODULES):
            if name in sys.modules:
                importlib.reload(sys.modules[name])
        ScriptedLoadableModuleWidget.onReload(self)

    def cleanup(self) -> None:
        self.logic.cancelPrediction()
        self._pollTimer.stop()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateButtons)
            self._parameterNode = None

    def onSceneStartClose(self, _caller, _event) -> None:
        self.logic.cancelPrediction()
        self.setParameterNode(None)

    def onSceneEndClose(self, _caller, _event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    # --- inputs --------------------------------------------------------------------------------

    def onLoadDemo(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to make the demo case."), waitCursor=True):
            if not self.ensureDependencies():
                return
            volume, tumour, segmentId = self.logic.loadDemoCase()
            self._parameterNode.inputVolume = volume
            self._parameterNode.tumourSegmentation = tumour
            self.ui.tumourSegmentSelector.setCurrentSegmentID(segmentId)
            slicer.util.setSliceViewerLayers(background=volume, fit=True)

    def onOpenSegmentEditor(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to open the Segment Editor."), waitCursor=True):
            p = self._parameterNode
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
        with slicer.util.tryWithErrorDisplay(
            _("Failed to segment the tumour from the point."), waitCursor=True
        ):
            if not self.ensureDependencies():
                return
            p = self._parameterNode
            node, segmentId, result = self.logic.segmentTumourFromSeed(
                p.inputVolume, p.seedPoint, p.tumourBox, p.tumourSegmentation
            )
            p.tumourSegmentation = node
            self.ui.tumourSegmentSelector.setCurrentSegmentID(segmentId)
            self.setStatus(_("Tumour: {volume:.2f} ml.").format(volume=result.volume_ml), result.warnings)

    def onGenerateRois(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to generate the ROIs."), waitCursor=True):
            if not self.ensureDependencies():
                return
            p = self._parameterNode
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

            entry = registry.get_entry(self._parameterNode.modelId)
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
        """Name the GPU next to the device choice, without importing torch when it is absent."""
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            self.ui.deviceInfoLabel.text = _("PyTorch not installed yet: it is installed on first use.")
            return
        import torch

        if torch.cuda.is_available():
            name = torch.cuda.get_device_name(0)
            self.ui.deviceComboBox.setItemText(
                list(Device).index(Device.GPU), _("GPU ({name})").format(name=name)
            )
            self.ui.deviceInfoLabel.text = _("Detected GPU: {name}").format(name=name)
        else:
            self.ui.deviceInfoLabel.text = _("No CUDA GPU detected: Auto runs on the CPU.")

    def ensureDependencies(self) -> bool:
        import BreastSubtypeDependencies

        return BreastSubtypeDependencies.ensure_dependencies(slicer.util.confirmOkCancelDisplay)

    # --- prediction ----------------------------------------------------------------------------

    def onRun(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to start the prediction."), waitCursor=True):
            if not self.ensureDependencies():
                return
            p = self._parameterNode
            self.logic.startPrediction(
                p.inputVolume, p.roiSegmentation, p.modelId, p.device.value, p.rim_mm, p.peri_mm
            )
            self.ui.progressBar.value = 0
            self.setStatus(_("Prediction started..."))
            self._pollTimer.start()
            self.updateButtons()

    def onCancel(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to cancel the prediction."), waitCursor=True):
            self.logic.cancelPrediction()
            self._pollTimer.stop()
            self.setStatus(_("Prediction cancelled."))
            self.updateButtons()

    def onPollPrediction(self) -> None:
        for update in self.logic.process.poll():
            self.ui.progressBar.value = int(round(update.fraction * 100))
            self.setStatus(update.stage)
        if self.logic.process.running:
            return
        self._pollTimer.stop()
        with slicer.util.tryWithErrorDisplay(_("The prediction failed."), waitCursor=True):
            if getattr(self.logic.process, "cancelled", False):
                return
            if self.logic.process.returncode != 0:
                raise RuntimeError(self.logic.predictionError())
            self.showResults()
        self.updateButtons()

    def showResults(self) -> None:
        p = self._parameterNode
        case = self.logic.importPrediction(p.inputVolume, p.roiSegmentation, p.heatmapThreshold)
        p.resultsTable = case.table_node
        if case.heatmap_nodes:
            p.heatmapVolume = next(iter(case.heatmap_nodes.values()))
        demonstration = bool((case.prediction.get("model") or {}).get("demonstration"))
        self.ui.demonstrationWarningLabel.visible = demonstration
        self.ui.progressBar.value = 100
        self.setStatus(_("Prediction finished."), case.prediction.get("warnings"))
        self.updateOverlay()

    def updateOverlay(self) -> None:
        p = self._parameterNode
        if not p or not p.heatmapVolume:
            return
        from BreastSubtypeMRML import heatmaps

        heatmaps.set_heatmap_threshold(p.heatmapVolume, p.heatmapThreshold)
        heatmaps.show_overlay(slicer.mrmlScene, p.inputVolume, p.heatmapVolume, p.heatmapOpacity)

    def onExportReport(self) -> None:
        with slicer.util.tryWithErrorDisplay(_("Failed to export the report."), waitCursor=True):
            path = qt.QFileDialog.getSaveFileName(
                slicer.util.mainWindow(), _("Export report"), "BreastSubtype-report.html", _("HTML (*.html)")
            )
            if not path:
                return
            from BreastSubtypeLib.atomic import write_bytes_atomic

            write_bytes_atomic(path, (self.logic.outputFolder / "report.html").read_bytes())
            self.setStatus(_("Report saved to {path}.").format(path=os.path.basename(path)))

    def setStatus(self, text: str, warnings=None) -> None:
        lines = [text] + [f"\u26a0 {w}" for w in (warnings or [])]
        self.ui.statusLabel.text = "\n".join(line for line in lines if line)
