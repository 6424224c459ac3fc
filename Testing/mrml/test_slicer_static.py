"""What only a real Slicer runs, checked statically: the .ui, its bindings, the GUI's error paths,
signal order, imports, dependency installer, self-test and the CMake lists."""

from __future__ import annotations

import ast
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cmake_lists import TARGETS, current_block, generated_block, missing_from_cmake  # noqa: E402

from BreastSubtypeLib.reports.margin_section import PANEL_TITLE  # noqa: E402
from BreastSubtypeMRML.tables import EVIDENCE_ATTRIBUTE  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "BreastSubtype"
PACKAGE = MODULE / "BreastSubtypeModuleLib"
UI = MODULE / "Resources" / "UI" / "BreastSubtype.ui"
WIDGET = PACKAGE / "widget.py"
MODULE_FILES = sorted([MODULE / "BreastSubtype.py", *PACKAGE.glob("*.py")])
HEAVY = {"torch", "monai", "scipy", "skimage", "SimpleITK", "numpy", "matplotlib", "BreastSubtypeLib",
         "BreastSubtypeMRML", "safetensors"}  # fmt: skip
# Runs without the Slicer GUI (slicer-core, or plain Python): no qt, ctk, slicer.app/util/modules.
NO_GUI = sorted(
    [*(MODULE / "BreastSubtypeMRML").glob("*.py")]
    + [PACKAGE / f"{n}.py" for n in ("logic", "paths", "process", "prediction", "gpu", "reloading")]
)
UNIT_CLASSES = {float: ("QDoubleSpinBox", "ctkSliderWidget")}


def _ui_widgets() -> dict[str, ET.Element]:
    return {w.get("name"): w for w in ET.parse(UI).getroot().iter("widget") if w.get("name")}


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _parameters() -> dict[str, str]:
    """Parameter name -> annotation source, from the parameterNodeWrapper class."""
    tree = _parse(PACKAGE / "parameters.py")
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "BreastSubtypeParameterNode")
    return {n.target.id: ast.unparse(n.annotation) for n in cls.body if isinstance(n, ast.AnnAssign)}


def _bound_widgets() -> dict[str, ET.Element]:
    bound = {}
    for widget in _ui_widgets().values():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound[prop.findtext("string")] = widget
    return bound


def _manual_bindings() -> dict[str, str]:
    for node in _parse(WIDGET).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "MANUAL_BINDINGS":
            return ast.literal_eval(node.value)
    return {}


def _methods(path: Path) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in ast.walk(_parse(path)) if isinstance(n, ast.FunctionDef)}


def _button_handlers() -> set[str]:
    return set(re.findall(r"\.clicked\.connect\(self\.(\w+)\)", ast.unparse(_parse(WIDGET))))


def test_ui_parses_and_names_are_unique():
    root = ET.parse(UI).getroot()
    names = [w.get("name") for w in root.iter("widget") if w.get("name")]
    assert len(names) == len(set(names))
    assert root.find("widget").get("class") == "qMRMLWidget"


def test_every_widget_the_code_names_exists_with_its_class():
    widgets = _ui_widgets()
    used = set(re.findall(r"self\.ui\.(\w+)", WIDGET.read_text(encoding="utf-8")))
    assert used, "the widget names no .ui widgets"
    assert sorted(used - set(widgets)) == []
    expected = {
        "inputVolumeSelector": "qMRMLNodeComboBox",
        "dceSeriesSelector": "qMRMLNodeComboBox",
        "phaseComboBox": "QComboBox",
        "tumourSegmentSelector": "qMRMLSegmentSelectorWidget",
        "seedPlaceWidget": "qSlicerMarkupsPlaceWidget",
        "modelComboBox": "QComboBox",
        "progressBar": "QProgressBar",
        "processLogTextEdit": "QPlainTextEdit",
        "resultsTableView": "qMRMLTableView",
        "heatmapOpacitySlider": "ctkSliderWidget",
        "runButton": "QPushButton",
        "cancelButton": "QPushButton",
    }
    assert {name: widgets[name].get("class") for name in expected} == expected


def test_process_log_is_a_collapsible_read_only_panel():
    root = ET.parse(UI).getroot()
    panel = next(w for w in root.iter("widget") if w.get("name") == "processLogCollapsibleButton")
    assert panel.get("class") == "ctkCollapsibleButton"
    assert panel.find("property[@name='collapsed']/bool").text == "true"
    log = next(w for w in panel.iter("widget") if w.get("name") == "processLogTextEdit")
    assert log.find("property[@name='readOnly']/bool").text == "true"


def test_margin_evidence_is_a_collapsed_panel_the_run_fills():
    """Each call's strongest margin numbers: a panel of their own, collapsed by default (as rows of
    the results table they pushed the heatmap controls down), its view following the evidence table
    that showResults puts in the parameter node, with the report's one-line legend under it."""
    root = ET.parse(UI).getroot()
    results = next(w for w in root.iter("widget") if w.get("name") == "resultsCollapsibleButton")
    panel = next(w for w in results.iter("widget") if w.get("name") == "marginEvidenceCollapsibleButton")
    assert panel.get("class") == "ctkCollapsibleButton"
    assert panel.find("property[@name='text']/string").text == PANEL_TITLE  # the web app's and report's
    assert panel.find("property[@name='collapsed']/bool").text == "true"
    inside = {w.get("name"): w.get("class") for w in panel.iter("widget") if w.get("name")}
    assert inside == {
        "marginEvidenceCollapsibleButton": "ctkCollapsibleButton",
        "marginEvidenceTableSelector": "qMRMLNodeComboBox",
        "marginEvidenceTableView": "qMRMLTableView",
        "marginEvidenceLegendLabel": "QLabel",
    }
    assert _bound_widgets()["marginEvidenceTable"].get("name") == "marginEvidenceTableSelector"
    connections = {
        (c.findtext("sender"), c.findtext("signal"), c.findtext("receiver"), c.findtext("slot"))
        for c in root.iter("connection")
    }
    assert (
        "marginEvidenceTableSelector",
        "currentNodeChanged(vtkMRMLNode*)",
        "marginEvidenceTableView",
        "setMRMLTableNode(vtkMRMLNode*)",
    ) in connections
    for receiver in ("marginEvidenceTableSelector", "marginEvidenceTableView"):
        scene = ("BreastSubtype", "mrmlSceneChanged(vtkMRMLScene*)", receiver, "setMRMLScene(vtkMRMLScene*)")
        assert scene in connections
    show = ast.unparse(_methods(WIDGET)["showResults"])
    assert "p.marginEvidenceTable = case.evidence_table_node" in show
    assert "self.ui.marginEvidenceLegendLabel.text = " in show and "evidence_legend(demonstration)" in show
    # The selector lists evidence tables only (BreastSubtypeMRML.tables.EVIDENCE_ATTRIBUTE).
    setup = ast.unparse(_methods(WIDGET)["setup"])
    assert (
        f"marginEvidenceTableSelector.addAttribute('vtkMRMLTableNode', '{EVIDENCE_ATTRIBUTE}', '1')" in setup
    )


def test_every_parameter_is_bound_to_a_widget_of_a_fitting_class():
    bound, manual, widgets = _bound_widgets(), _manual_bindings(), _ui_widgets()
    for name, annotation in _parameters().items():
        if name in manual:
            assert manual[name] in widgets, f"{name}: manual binding to a missing widget"
            continue
        assert name in bound, f"parameter {name} is bound to no widget"
        widget = bound[name]
        cls = widget.get("class")
        node_class = re.search(r"slicer\.(vtkMRML\w+)", annotation)
        if node_class:
            assert cls == "qMRMLNodeComboBox", name
            types = [s.text for s in widget.find("property[@name='nodeTypes']").iter("string")]
            assert types == [node_class.group(1)], name
        elif "float" in annotation:
            assert cls in UNIT_CLASSES[float], name
        elif "Device" in annotation:
            assert cls == "QComboBox", name
    assert set(bound) <= set(_parameters()), "a .ui widget is bound to an unknown parameter"


def test_widths_are_millimetres_with_ranges():
    parameters = _parameters()
    for name in ("rim_mm", "peri_mm"):
        assert "WithinRange" in parameters[name]
        assert _bound_widgets()[name].find("property[@name='suffix']").findtext("string") == " mm"


def test_every_user_action_is_wrapped_in_try_with_error_display():
    handlers, methods = _button_handlers(), _methods(WIDGET)
    assert len(handlers) >= 11
    for name in handlers:
        withs = [n for n in ast.walk(methods[name]) if isinstance(n, ast.With)]
        assert any("tryWithErrorDisplay" in ast.unparse(w.items[0].context_expr) for w in withs), name


def test_buttons_are_restored_on_every_error_path():
    """tryWithErrorDisplay re-raises after showing the error (slicer/util.py, 5.10): a handler that
    changes what the buttons allow must restore them in ``finally``, not after the with block."""
    for name, method in _methods(WIDGET).items():
        calls = [
            n
            for n in ast.walk(method)
            if isinstance(n, ast.Call) and ast.unparse(n.func) == "self.updateButtons"
        ]
        if not calls or name in ("onParameterNodeModified", "onSeriesChanged", "setParameterNode"):
            continue
        in_finally = {
            id(c)
            for t in ast.walk(method)
            if isinstance(t, ast.Try)
            for f in t.finalbody
            for c in ast.walk(f)
        }
        assert all(id(call) in in_finally for call in calls), (
            f"{name}: updateButtons() outside a finally block"
        )
        tries = [t for t in ast.walk(method) if isinstance(t, ast.Try) and t.finalbody]
        assert any("tryWithErrorDisplay" in ast.unparse(t.body[0]) for t in tries), name
    for name in ("onRun", "onCancel", "onPollPrediction", "onGenerateRois", "onOneClickTumour", "onLoadDemo"):
        assert "finally" in ast.unparse(_methods(WIDGET)[name]), name


def test_bound_widgets_are_read_from_the_parameter_node_not_from_their_signals():
    """A signal connected to a bound widget can run before the parameter connector stores the
    value (the heatmap choice lagged one step): the widget reacts to the node's ModifiedEvent."""
    bound = {widget.get("name") for widget in _bound_widgets().values()}
    source = ast.unparse(_parse(WIDGET))
    connected = set(re.findall(r"self\.ui\.(\w+)\.\w+\.connect\(", source))
    connected |= set(re.findall(r"self\.ui\.(\w+)\.connect\(", source))
    assert sorted(connected & bound) == []
    setup = ast.unparse(_methods(WIDGET)["setParameterNode"])
    assert setup.index("connectGui") < setup.index("addObserver")
    assert "onParameterNodeModified" in setup and "updateOverlay" in ast.unparse(
        _methods(WIDGET)["onParameterNodeModified"]
    )


def test_a_run_finishes_without_the_panel_s_parameter_node():
    """exit() drops the panel's parameter node while the poll timer runs on: finishing reads the
    scene's parameter node through the logic, and the run owns its input node IDs."""
    show = ast.unparse(_methods(WIDGET)["showResults"])
    assert "self._parameterNode" not in show and "self.logic.getParameterNode()" in show
    exit_source = ast.unparse(_methods(WIDGET)["exit"])
    assert "cancel" not in exit_source and "_pollTimer.stop" not in exit_source


LIGHT = {"BreastSubtypeLib.progress"}  # standard library only: safe before anything is installed


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in _parse(path).body:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Try):
            for sub in node.body:
                if isinstance(sub, ast.ImportFrom) and sub.module:
                    names.add(sub.module)
    return names


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: p.name)
def test_module_files_import_nothing_heavy_at_import_time(path):
    heavy = {name for name in _top_level_imports(path) - LIGHT if name.split(".")[0] in HEAVY}
    assert heavy == set(), f"{path.name} imports {heavy} at import time (before dependencies are installed)"


@pytest.mark.parametrize("path", MODULE_FILES, ids=lambda p: p.name)
def test_module_never_imports_torch_in_slicer_s_process(path):
    """A broken torch must not break the panel, and CUDA is initialised only in the child process."""
    imported = set()
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "torch" not in imported


def _forbidden_gui_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in ("qt", "ctk")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("qt", "ctk"):
            found.append(node.module)
        elif isinstance(node, ast.Attribute) and ast.unparse(node) in (
            "slicer.app",
            "slicer.util",
            "slicer.modules",
        ):
            found.append(ast.unparse(node))
    return found


@pytest.mark.parametrize("path", NO_GUI, ids=lambda p: p.name)
def test_mrml_logic_uses_no_qt_ctk_or_application(path):
    assert _forbidden_gui_uses(path) == []


def test_only_slicer_5_10_util_functions_are_called():
    known = {
        line.strip()
        for line in (Path(__file__).parent / "slicer_5_10_util_names.txt")
        .read_text(encoding="utf-8")
        .splitlines()
        if line.strip() and not line.startswith("#")
    }
    used = set()
    for path in [*MODULE_FILES, *(MODULE / "BreastSubtypeMRML").glob("*.py")]:
        for node in ast.walk(_parse(path)):
            if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "slicer.util":
                used.add(node.attr)
            elif isinstance(node, ast.ImportFrom) and node.module == "slicer.util":
                used |= {a.name for a in node.names}
    assert used and sorted(used - known) == []


def test_new_references_from_mrml_are_released():
    """CreateNodeByClass and GetNodesByClass return references the caller owns (vtkMRMLScene.h):
    each such call is followed by UnRegister(None) in the same function, or not made at all."""
    for path in [*MODULE_FILES, *(MODULE / "BreastSubtypeMRML").glob("*.py")]:
        for function in (n for n in ast.walk(_parse(path)) if isinstance(n, ast.FunctionDef)):
            source = ast.unparse(function)
            owned = len(re.findall(r"\.(CreateNodeByClass|GetNodesByClass|GetNodesByClassByName)\(", source))
            assert source.count(".UnRegister(None)") >= owned, f"{path.name}:{function.name}"


def test_dependency_installer_asks_once_and_never_replaces_torch():
    tree = _parse(PACKAGE / "dependencies.py")
    ensure = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "ensure")
    asks = [n for n in ast.walk(ensure) if isinstance(n, ast.Call) and ast.unparse(n.func) == "confirm"]
    assert len(asks) == 1
    source = ast.unparse(tree)
    assert "installTorch(askConfirmation=False" in source  # PyTorch Utils would ask a second time
    assert "import slicer.packaging" in source and "getattr(slicer, 'packaging'" not in source
    assert "prompt_install=False" in source and "constraints=constraints" in source
    assert '["-c", str(constraints)' in (PACKAGE / "dependencies.py").read_text(
        encoding="utf-8"
    )  # the 5.10 fallback too
    widget = ast.unparse(_parse(WIDGET))
    assert "confirmOkCancelDisplay" not in widget.replace(
        "dependencies.ensure(action, slicer.util.confirmOkCancelDisplay", ""
    )


def test_demo_one_click_and_rois_do_not_ask_for_torch():
    methods = _methods(WIDGET)
    assert "ensureDependencies" not in ast.unparse(methods["onLoadDemo"])  # shipped files only
    for name in ("onOneClickTumour", "onGenerateRois"):
        assert "self.ensureDependencies('regions')" in ast.unparse(methods[name]), name
    assert "self.ensureDependencies('prediction')" in ast.unparse(methods["onRun"])


def test_gpu_memory_is_checked_before_a_run():
    run = ast.unparse(_methods(WIDGET)["onRun"])
    assert run.index("gpu.decide_device") < run.index("self.logic.startPrediction")
    assert "decision.device" in run


def test_self_test_sets_up_and_never_blocks_the_gui():
    tree = _parse(PACKAGE / "selftest.py")
    source = ast.unparse(tree)
    assert ".wait(" not in source
    assert "slicer.app.processEvents()" in ast.unparse(_methods(PACKAGE / "selftest.py")["waitForPrediction"])
    assert "dependencies.ensure('prediction'" in source and "sampledata.load_demo_case()" in source


def test_reload_uses_dependency_order():
    assert "reloading.reload_packages()" in ast.unparse(_methods(WIDGET)["onReload"])
    assert "import imp\n" not in "".join(p.read_text(encoding="utf-8") for p in MODULE_FILES)


def test_startup_registers_sample_data_and_terminology():
    source = ast.unparse(_parse(MODULE / "BreastSubtype.py"))
    assert "slicer.app.connect('startupCompleted()', onStartupCompleted)" in source
    startup = ast.unparse(_methods(MODULE / "BreastSubtype.py")["onStartupCompleted"])
    assert "sampledata.register" in startup and "terminology.register" in startup


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.folder.name)
def test_cmake_lists_every_file_it_must_install(target):
    assert missing_from_cmake(target) == [], "run: .venv/bin/python Testing/mrml/cmake_lists.py"
    assert current_block(target) == generated_block(target), (
        "run: .venv/bin/python Testing/mrml/cmake_lists.py"
    )


def test_extension_cmake_is_a_slicer_extension_without_the_training_package():
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):  # fmt: skip
        assert f"set({key} " in text
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in text
    subdirs = re.findall(r"^add_subdirectory\((\w+)\)", text, flags=re.M)
    assert subdirs == ["BreastSubtype", "BreastSubtypeLib"]
    for include in ("${Slicer_USE_FILE}", "${Slicer_EXTENSION_GENERATE_CONFIG}", "${Slicer_EXTENSION_CPACK}"):
        assert f"include({include})" in text


def test_extension_catalog_entry_matches_the_cmake_metadata():
    entry = json.loads((ROOT / "Resources/ExtensionCatalog/BreastSubtype.json").read_text(encoding="utf-8"))
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert entry["build_dependencies"] == ["PyTorch"]
    assert f'set(EXTENSION_CATEGORY "{entry["category"]}")' in text
    assert entry["scm_url"].endswith(".git")
