"""What only a real Slicer runs, checked statically: the .ui, its bindings, CMake lists, imports."""

from __future__ import annotations

import ast
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cmake_lists import listed_files, missing_from_cmake, python_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "BreastSubtype"
UI = MODULE / "Resources" / "UI" / "BreastSubtype.ui"
SIBLINGS = ("BreastSubtypeLogic", "BreastSubtypeWidget", "BreastSubtypeTest", "BreastSubtypeParameters",
            "BreastSubtypeProcess", "BreastSubtypeDependencies")  # fmt: skip
HEAVY = {"torch", "monai", "scipy", "skimage", "SimpleITK", "numpy", "matplotlib", "BreastSubtypeLib",
         "BreastSubtypeMRML", "safetensors"}  # fmt: skip
UNIT_CLASSES = {float: ("QDoubleSpinBox", "ctkSliderWidget")}


def _ui_widgets() -> dict[str, ET.Element]:
    return {w.get("name"): w for w in ET.parse(UI).getroot().iter("widget") if w.get("name")}


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _parameters() -> dict[str, str]:
    """Parameter name -> annotation source, from the parameterNodeWrapper class."""
    tree = _parse(MODULE / "BreastSubtypeParameters.py")
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
    tree = _parse(MODULE / "BreastSubtypeWidget.py")
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "MANUAL_BINDINGS":
            return ast.literal_eval(node.value)
    return {}


def test_ui_parses_and_names_are_unique():
    root = ET.parse(UI).getroot()
    names = [w.get("name") for w in root.iter("widget") if w.get("name")]
    assert len(names) == len(set(names))
    assert root.find("widget").get("class") == "qMRMLWidget"


def test_every_widget_the_code_names_exists_with_its_class():
    widgets = _ui_widgets()
    source = (MODULE / "BreastSubtypeWidget.py").read_text(encoding="utf-8")
    used = set(re.findall(r"self\.ui\.(\w+)", source))
    assert used, "the widget names no .ui widgets"
    assert sorted(used - set(widgets)) == []
    expected = {
        "inputVolumeSelector": "qMRMLNodeComboBox",
        "tumourSegmentSelector": "qMRMLSegmentSelectorWidget",
        "seedPlaceWidget": "qSlicerMarkupsPlaceWidget",
        "modelComboBox": "QComboBox",
        "progressBar": "QProgressBar",
        "resultsTableView": "qMRMLTableView",
        "heatmapOpacitySlider": "ctkSliderWidget",
        "runButton": "QPushButton",
        "cancelButton": "QPushButton",
    }
    assert {name: widgets[name].get("class") for name in expected} == expected


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
        suffix = _bound_widgets()[name].find("property[@name='suffix']").findtext("string")
        assert suffix == " mm"


def test_every_user_action_is_wrapped_in_try_with_error_display():
    tree = _parse(MODULE / "BreastSubtypeWidget.py")
    source = ast.unparse(tree)
    handlers = set(re.findall(r"\.clicked\.connect\(self\.(\w+)\)", source))
    assert len(handlers) >= 9
    methods = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    for name in handlers:
        withs = [n for n in ast.walk(methods[name]) if isinstance(n, ast.With)]
        assert any("tryWithErrorDisplay" in ast.unparse(w.items[0].context_expr) for w in withs), name


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in _parse(path).body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Try):
            for sub in node.body:
                if isinstance(sub, ast.ImportFrom) and sub.module:
                    names.add(sub.module.split(".")[0])
    return names


@pytest.mark.parametrize("name", ("BreastSubtype", *SIBLINGS))
def test_module_files_import_nothing_heavy_at_import_time(name):
    heavy = _top_level_imports(MODULE / f"{name}.py") & HEAVY
    assert heavy == set(), f"{name}.py imports {heavy} at import time (before dependencies are installed)"


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


@pytest.mark.parametrize(
    "path", sorted((MODULE / "BreastSubtypeMRML").glob("*.py")) + [MODULE / "BreastSubtypeLogic.py"], ids=str
)
def test_mrml_logic_uses_no_qt_ctk_or_application(path):
    assert _forbidden_gui_uses(path) == []


def test_module_cmake_lists_every_script_and_resource():
    listed = listed_files(MODULE / "CMakeLists.txt")
    scripts = python_files(MODULE)
    resources = ["Resources/Icons/BreastSubtype.png", "Resources/UI/BreastSubtype.ui"]
    assert [name for name in scripts + resources if name not in listed] == []
    assert "WITH_GENERIC_TESTS" in (MODULE / "CMakeLists.txt").read_text()


def test_lib_cmake_lists_every_python_file_and_package_data():
    missing = missing_from_cmake(ROOT / "BreastSubtypeLib", resources=True)
    assert missing == [], f"run: .venv/bin/python Testing/mrml/cmake_lists.py  (missing: {missing})"


def test_extension_cmake_is_a_slicer_extension_without_the_training_package():
    text = (ROOT / "CMakeLists.txt").read_text()
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):  # fmt: skip
        assert f"set({key} " in text
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in text
    subdirs = re.findall(r"^add_subdirectory\((\w+)\)", text, flags=re.M)
    assert subdirs == ["BreastSubtype", "BreastSubtypeLib"]
    for include in ("${Slicer_USE_FILE}", "${Slicer_EXTENSION_GENERATE_CONFIG}", "${Slicer_EXTENSION_CPACK}"):
        assert f"include({include})" in text


def test_extension_catalog_entry_matches_the_cmake_metadata():
    entry = json.loads((ROOT / "Resources/ExtensionCatalog/BreastSubtype.json").read_text())
    text = (ROOT / "CMakeLists.txt").read_text()
    assert entry["build_dependencies"] == ["PyTorch"]
    assert f'set(EXTENSION_CATEGORY "{entry["category"]}")' in text
    assert entry["scm_url"].endswith(".git")


def test_requirements_never_replace_slicers_own_packages():
    lines = [
        line.split("#")[0].strip().lower()
        for line in (ROOT / "Resources/requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert lines
    assert not [line for line in lines if re.match(r"(numpy|simpleitk|torch|vtk)\b", line)]
