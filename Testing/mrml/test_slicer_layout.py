"""Slicer's module discovery and loading rules, read from its source, applied to the source tree
(the developer route) and to what CMake installs (the Extensions Manager route).

The rules (Slicer 5.10, Base/QTGUI and Base/QTCore):
- ``qSlicerScriptedLoadableModuleFactory::isValidFile`` accepts every ``*.py`` of a module path, and
  ``registerAllFileItems`` scans each path's top level only (sub-folders are not modules);
- ``qSlicerScriptedLoadableModule::setPythonSource`` names the module after the file and fails
  unless the file defines a class of that name; the widget is the attribute ``<Module>Widget`` of
  the same Python module (``qSlicerScriptedLoadableModuleWidget::setPythonSource``), the self-test
  ``<Module>Test`` (``ScriptedLoadableModule.runTest``);
- ``ctkFactoryScriptedItem::load`` appends only the module's own folder to ``sys.path``;
- ``slicerMacroBuildScriptedModule`` installs into qt-scripted-modules/, or qt-scripted-modules/
  <folder>/ WITH_SUBDIR (``_destination_subdir``), keeping the scripts' relative paths.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cmake_lists import cmake_commands, installed_layout  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "BreastSubtype"
FIRST_PARTY = ("BreastSubtypeLib", "BreastSubtypeMRML", "BreastSubtypeModuleLib")


def _module_files(top_level_names) -> list[str]:
    """What the factory registers: every .py (or .pyc without its .py) at the top of a module path."""
    names = set(top_level_names)
    return sorted(n for n in names if n.endswith(".py") or (n.endswith(".pyc") and n[:-1] not in names))


def _base_names(cls: ast.ClassDef) -> set[str]:
    return {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in cls.bases}


def _top_level_names(tree: ast.Module) -> dict[str, ast.AST]:
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            names[node.name] = node
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                names[alias.asname or alias.name] = node
    return names


def _loading_errors(path: Path) -> list[str]:
    """Why Slicer would fail to load ``path`` as a module (empty when it loads)."""
    name = path.name.removesuffix(".py")
    names = _top_level_names(ast.parse(path.read_text(encoding="utf-8")))
    found = names.get(name)
    if not isinstance(found, ast.ClassDef) or "ScriptedLoadableModule" not in _base_names(found):
        return [f"{path.name}: no ScriptedLoadableModule subclass named {name}"]
    return []


def _installed_tree(tmp_path: Path) -> Path:
    target = tmp_path / "lib" / "Slicer-5.10" / "qt-scripted-modules"
    for relative, source in installed_layout().items():
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / relative)
    return target


def test_developer_module_path_holds_exactly_one_module_that_loads():
    top = [p.name for p in MODULE_DIR.iterdir() if p.is_file()]
    assert _module_files(top) == ["BreastSubtype.py"]
    assert _loading_errors(MODULE_DIR / "BreastSubtype.py") == []


def test_installed_extension_holds_exactly_one_module_that_loads(tmp_path):
    layout = installed_layout()
    missing = sorted(str(source) for source in layout.values() if not source.is_file())
    assert missing == [], "CMake names files that do not exist"
    installed = _installed_tree(tmp_path)
    top = [p.name for p in installed.iterdir() if p.is_file()]
    assert _module_files(top) == ["BreastSubtype.py"]
    assert _loading_errors(installed / "BreastSubtype.py") == []
    for package in FIRST_PARTY:
        assert (installed / package / "__init__.py").is_file(), f"{package} is not installed as a package"
        folders = {p.parent for p in (installed / package).rglob("*.py")}
        assert [f for f in folders if not (f / "__init__.py").is_file()] == []


def test_every_first_party_import_resolves_in_the_installed_tree(tmp_path):
    installed = _installed_tree(tmp_path)
    modules = {
        ".".join(p.relative_to(installed).with_suffix("").parts).removesuffix(".__init__")
        for p in installed.rglob("*.py")
    }
    unresolved = []
    for path in installed.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FIRST_PARTY and name not in modules:
                    unresolved.append(f"{path.relative_to(installed)}: {name}")
    assert unresolved == []


def test_slicer_finds_widget_logic_and_test_classes_in_the_module_file():
    names = _top_level_names(ast.parse((MODULE_DIR / "BreastSubtype.py").read_text(encoding="utf-8")))
    for suffix, base in (("Widget", "ScriptedLoadableModuleWidget"), ("Logic", "ScriptedLoadableModuleLogic"),
                         ("Test", "ScriptedLoadableModuleTest")):  # fmt: skip
        imported = names.get(f"BreastSubtype{suffix}")
        assert isinstance(imported, ast.ImportFrom), f"BreastSubtype{suffix} is not in BreastSubtype.py"
        source = MODULE_DIR.joinpath(*imported.module.split(".")).with_suffix(".py")
        defined = _top_level_names(ast.parse(source.read_text(encoding="utf-8")))[f"BreastSubtype{suffix}"]
        assert isinstance(defined, ast.ClassDef) and base in _base_names(defined)
    test_class = _top_level_names(
        ast.parse((MODULE_DIR / "BreastSubtypeModuleLib/selftest.py").read_text(encoding="utf-8"))
    )
    methods = [n.name for n in test_class["BreastSubtypeTest"].body if isinstance(n, ast.FunctionDef)]
    assert "runTest" in methods and any(m.startswith("test_") for m in methods)  # unittest loader and Slicer


def _import_as_slicer_does(module_dir: Path) -> list[str]:
    """In a fresh interpreter without site-packages, with only the module's folder on sys.path
    (what Slicer adds), run what BreastSubtype.py runs first, then import every package."""
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(module_dir)!r}]\n"
        "from BreastSubtypeModuleLib import paths\n"
        "paths.make_lib_importable()\n"
        "import BreastSubtypeLib, BreastSubtypeMRML, BreastSubtypeModuleLib\n"
        "for m in (BreastSubtypeLib, BreastSubtypeMRML, BreastSubtypeModuleLib): print(m.__file__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=module_dir.parent
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def _child_finds_lib(module_dir: Path) -> str:
    """The background process as the module starts it: Slicer's environment plus child_environment."""
    sys.path.insert(0, str(module_dir))
    try:
        from BreastSubtypeModuleLib import paths

        base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env = paths.child_environment(base, module_dir=module_dir)
    finally:
        sys.path.remove(str(module_dir))
    code = "import BreastSubtypeLib.cli.main as m, BreastSubtypeLib; print(BreastSubtypeLib.__file__)"
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=env, cwd="/")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_developer_route_imports_the_lib_in_slicer_and_in_the_child_process():
    lib, mrml, module_lib = _import_as_slicer_does(MODULE_DIR)
    assert Path(lib) == ROOT / "BreastSubtypeLib" / "__init__.py"
    assert Path(mrml) == MODULE_DIR / "BreastSubtypeMRML" / "__init__.py"
    assert Path(module_lib) == MODULE_DIR / "BreastSubtypeModuleLib" / "__init__.py"
    assert Path(_child_finds_lib(MODULE_DIR)) == ROOT / "BreastSubtypeLib" / "__init__.py"


def test_extension_route_imports_the_lib_in_slicer_and_in_the_child_process(tmp_path):
    installed = _installed_tree(tmp_path)
    files = _import_as_slicer_does(installed)
    assert [Path(f) for f in files] == [installed / p / "__init__.py" for p in FIRST_PARTY]
    assert Path(_child_finds_lib(installed)) == installed / "BreastSubtypeLib" / "__init__.py"


@pytest.mark.parametrize("route", ["developer", "extension"])
def test_resources_are_found_in_both_routes(route, tmp_path):
    from BreastSubtypeModuleLib import paths, sampledata, terminology

    module_dir = MODULE_DIR if route == "developer" else _installed_tree(tmp_path)
    assert paths.resource("requirements.txt", module_dir).read_text(encoding="utf-8") == (
        ROOT / "Resources/requirements.txt"
    ).read_text(encoding="utf-8")
    assert paths.resource(terminology.FILE, module_dir).is_file()
    assert paths.resource("UI/BreastSubtype.ui", module_dir).is_file()  # resourcePath("UI/...") in Slicer
    for sample in sampledata.FILES:
        assert (sampledata.sample_folder(module_dir) / sample.file_name).is_file()


def test_self_test_and_generic_tests_are_registered_with_ctest():
    commands = cmake_commands(MODULE_DIR / "CMakeLists.txt")
    build = next(args for name, args in commands if name == "slicermacrobuildscriptedmodule")
    assert "WITH_GENERIC_TESTS" in build and "WITH_SUBDIR" not in build
    text = re.sub(r"#[^\n]*", "", (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8"))
    assert re.search(
        r"if\(BUILD_TESTING\)\s*slicer_add_python_unittest\(SCRIPT \$\{MODULE_NAME\}\.py\)\s*endif\(\)", text
    )


def test_root_license_is_the_projects_apache_licence():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
