"""Developer "Reload": re-import the extension's own modules so no stale class survives.

Slicer's Reload re-executes only ``BreastSubtype.py`` (``slicer.util.reloadScriptedModule``).
Reloading the packages in alphabetical order is wrong: ``cli.main`` reloaded before ``errors``
keeps the old ``BadInputError``, so ``except BadInputError`` stops matching what ``errors`` now
raises. Here every loaded module is reloaded after the modules it imports (its imports read from
its source), with ``importlib.reload`` (the ``imp`` module is gone in Python 3.12).
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGES = ("BreastSubtypeLib", "BreastSubtypeMRML", "BreastSubtypeModuleLib")


def _imported_names(module) -> set[str]:
    """Every absolute module name the module's source imports (top level or inside functions)."""
    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py"):
        return set()
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    package = module.__name__ if path.endswith("__init__.py") else module.__name__.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # "from pkg import submodule"
    return names


def reload_order(names: Iterable[str]) -> list[str]:
    """``names`` (loaded modules) ordered so each comes after the ones it imports (cycles cut)."""
    names = sorted(set(names))
    wanted = set(names)
    edges = {name: sorted(_imported_names(sys.modules[name]) & wanted - {name}) for name in names}
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str) -> None:
        if state.get(name):  # done, or on the current path (a cycle: cut it here)
            return
        state[name] = "visiting"
        for dependency in edges[name]:
            visit(dependency)
        state[name] = "done"
        order.append(name)

    for name in names:
        visit(name)
    return order


def loaded_modules(packages: Iterable[str] = PACKAGES) -> list[str]:
    prefixes = tuple(packages)
    return [
        name
        for name, module in list(sys.modules.items())
        if module is not None and name.split(".")[0] in prefixes
    ]


def reload_packages(packages: Iterable[str] = PACKAGES) -> list[str]:
    """Reload every loaded module of ``packages`` in dependency order; returns the order used."""
    importlib.invalidate_caches()
    order = reload_order(loaded_modules(packages))
    for name in order:
        importlib.reload(sys.modules[name])
    return order
