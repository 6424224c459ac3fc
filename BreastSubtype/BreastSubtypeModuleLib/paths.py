"""Where the pieces of the extension are, in both install routes, and how the child process finds them.

Extension install (Extensions Manager or ``make package``)::

    lib/Slicer-X.Y/qt-scripted-modules/BreastSubtype.py
                                      /BreastSubtypeModuleLib/  /BreastSubtypeMRML/  /BreastSubtypeLib/
                                      /Resources/ (UI, Icons, SampleData, requirements.txt, terminology)

Developer route ("Additional module paths" = ``<clone>/BreastSubtype``)::

    <clone>/BreastSubtype/BreastSubtype.py, BreastSubtypeModuleLib/, BreastSubtypeMRML/, Resources/
    <clone>/BreastSubtypeLib/          <clone>/Resources/ (requirements.txt, terminology)

Slicer puts on ``sys.path`` only the folder where it found a module (``ctkFactoryScriptedItem::load``
in qSlicerScriptedLoadableModuleFactory.cxx), so in the developer route ``BreastSubtypeLib`` is
not importable until :func:`make_lib_importable` adds ``<clone>``; and the background process,
which starts with Slicer's startup environment, gets the same folder through ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parents[1]  # the folder holding BreastSubtype.py
LIB_PACKAGE = "BreastSubtypeLib"


def lib_root(module_dir: Path = MODULE_DIR) -> Path:
    """The folder that holds the ``BreastSubtypeLib`` package: beside the module, or one level up."""
    for folder in (module_dir, module_dir.parent):
        if (folder / LIB_PACKAGE / "__init__.py").is_file():
            return folder
    raise FileNotFoundError(
        f"{LIB_PACKAGE} was not found beside {module_dir} nor in {module_dir.parent}: "
        "reinstall the extension, or add <clone>/BreastSubtype of a complete clone to the module paths."
    )


def make_lib_importable(module_dir: Path = MODULE_DIR) -> Path:
    """Put :func:`lib_root` on ``sys.path`` (first, so a clone wins over an older pip install)."""
    root = str(lib_root(module_dir))
    if root not in sys.path:
        sys.path.insert(0, root)
    return Path(root)


def child_environment(base: Mapping[str, str] | None = None, module_dir: Path = MODULE_DIR) -> dict[str, str]:
    """The environment of the background ``python -m BreastSubtypeLib.cli.main``: the Lib's folder
    first on ``PYTHONPATH``, the rest of the environment as given (Slicer's own by default)."""
    env = dict(os.environ if base is None else base)
    entries = [str(lib_root(module_dir))] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(entries))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def resource(relative: str, module_dir: Path = MODULE_DIR) -> Path:
    """A file of ``Resources/``: the module's own folder first (installed), then the clone's root."""
    for folder in (module_dir / "Resources", module_dir.parent / "Resources"):
        if (folder / relative).is_file():
            return folder / relative
    raise FileNotFoundError(f"Resources/{relative} is missing beside {module_dir}; reinstall the extension.")
