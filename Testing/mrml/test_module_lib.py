"""The module's pure-Python parts: reload order with a real importlib reload, the GPU check, and
the run-folder sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from BreastSubtypeModuleLib import gpu, paths, prediction

ROOT = Path(__file__).resolve().parents[2]


def test_reload_leaves_no_stale_class():
    """In a fresh interpreter (a reload would swap classes under the other tests): after the
    module's Reload, cli.main's BadInputError is the reloaded errors.BadInputError."""
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(ROOT)!r}, {str(paths.MODULE_DIR)!r}]\n"
        "import BreastSubtypeLib.errors as errors, BreastSubtypeLib.cli.main as main, BreastSubtypeMRML.pipeline\n"
        "from BreastSubtypeModuleLib import reloading\n"
        "old = errors.BadInputError\n"
        "order = reloading.reload_packages()\n"
        "assert errors.BadInputError is not old, 'errors was not reloaded'\n"
        "assert main.BadInputError is errors.BadInputError, 'cli.main kept the old class'\n"
        "assert order.index('BreastSubtypeLib.errors') < order.index('BreastSubtypeLib.cli.main')\n"
        "assert order.index('BreastSubtypeLib.rois.labels') < order.index('BreastSubtypeMRML.pipeline')\n"
        "print(len(order))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) >= 5


def test_alphabetical_reload_would_leave_the_stale_class():
    """The failure the order prevents, shown with the same real modules."""
    code = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(ROOT)!r}]\n"
        "import BreastSubtypeLib.errors as errors, BreastSubtypeLib.cli.main as main\n"
        "for name in sorted(n for n in sys.modules if n.startswith('BreastSubtypeLib')):\n"
        "    importlib.reload(sys.modules[name])\n"
        "print(main.BadInputError is errors.BadInputError)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr


SMI = "0, NVIDIA H200, 140000, 143771\n1, NVIDIA RTX A2000 12GB, 900, 12282\n"


def test_nvidia_smi_rows_and_cuda_visible_devices():
    gpus = gpu.parse_nvidia_smi(SMI + "garbage line\n")
    assert [(g.index, g.name, g.free_mb, g.total_mb) for g in gpus] == [
        (0, "NVIDIA H200", 140000, 143771),
        (1, "NVIDIA RTX A2000 12GB", 900, 12282),
    ]
    assert gpu.visible_gpu(gpus, None).index == 0
    assert gpu.visible_gpu(gpus, "1,0").index == 1
    assert gpu.visible_gpu(gpus, "-1") is None
    assert gpu.visible_gpu(gpus, "") is None
    assert gpu.visible_gpu([], None) is None


def test_gpu_memory_check_falls_back_to_cpu_or_refuses_clearly():
    big, small = gpu.parse_nvidia_smi(SMI)
    assert gpu.decide_device("auto", big) == gpu.DeviceDecision("cuda", "Running on NVIDIA H200.")
    fallback = gpu.decide_device("auto", small)
    assert fallback.device == "cpu"
    assert fallback.message == (
        "NVIDIA RTX A2000 12GB has 900 MB free; a prediction needs about 1536 MB (other programs hold "
        "the rest). Running on the CPU instead."
    )
    with pytest.raises(gpu.GpuMemoryError, match="has 900 MB free.*choose the CPU"):
        gpu.decide_device("cuda", small)
    assert gpu.decide_device("cpu", small) == gpu.DeviceDecision("cpu", "")
    assert gpu.decide_device("auto", None) == gpu.DeviceDecision(
        "auto", ""
    )  # no nvidia-smi: the child decides


def test_stale_run_folders_of_dead_processes_are_swept(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f"{prediction.WORK_DIR_PREFIX}{dead_pid}-abc"
    mine = tmp_path / f"{prediction.WORK_DIR_PREFIX}{os.getpid()}-def"
    other = tmp_path / "BreastSubtype-unrelated"
    for folder in (stale, mine, other):
        (folder / "inputs").mkdir(parents=True)
        (folder / "inputs" / "image.nrrd").write_bytes(b"voxels")
    assert prediction.sweep_stale_work_dirs(tmp_path) == [stale]
    assert not stale.exists() and mine.exists() and other.exists()
