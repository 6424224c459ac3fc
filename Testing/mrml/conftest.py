"""Headless MRML for the Slicer module's logic: the real library from the ``slicer-core`` wheel.

Slicer's GUI application does this bootstrap itself; ``BreastSubtypeMRML.headless`` builds the
same minimum (scene, application logic, Colors/Volumes/Segmentations/SubjectHierarchy logics).
``slicer.util`` loaders need ``slicer.app`` and do not exist here, so tests use storage nodes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install -e '.[slicer]')")

# The module's own package (BreastSubtypeModuleLib) lives beside BreastSubtype.py, as in Slicer.
MODULE_DIR = Path(__file__).resolve().parents[2] / "BreastSubtype"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

pytestmark = pytest.mark.mrml


@pytest.fixture
def mrml():
    """A fresh scene with the Colors, Volumes, Segmentations and SubjectHierarchy logics."""
    from BreastSubtypeMRML.headless import headless_scene

    headless = headless_scene()
    yield headless
    headless.close()
