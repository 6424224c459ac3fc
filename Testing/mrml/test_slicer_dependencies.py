"""The dependency installer's plan and constraints, against the real installed distributions and
the real pip; and what Slicer's requirements must cover: the prediction and the ROIs run with
every other third-party package blocked (no torch at all for the ROIs)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from BreastSubtypeModuleLib import dependencies, paths

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = dependencies.load_requirements(ROOT / "Resources/requirements.txt")


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"},
    )


def test_requirements_are_minimal_and_never_name_slicer_s_own_packages():
    names = dependencies.requirement_names(REQUIREMENTS)
    assert names == ["scipy", "scikit-image", "safetensors", "psutil"]
    assert not {"torch", "numpy", "simpleitk", "vtk", "monai", "matplotlib"} & set(names)
    assert set(dependencies.REGION_PACKAGES) <= set(names)


def test_torch_minimum_is_the_lib_s_own():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    torch = next(
        Requirement(r) for r in pyproject["project"]["dependencies"] if Requirement(r).name == "torch"
    )
    lower = [spec.version for spec in torch.specifier if spec.operator == ">="]
    assert [
        spec.version for spec in dependencies.TORCH_REQUIREMENT.specifier if spec.operator == ">="
    ] == lower


def test_plan_lists_only_what_is_missing_and_torch_through_pytorch_utils():
    installed = {"numpy": "2.1.0", "scipy": "1.13.1", "psutil": "6.0.0"}
    regions = dependencies.plan("regions", REQUIREMENTS, installed)
    assert [str(r) for r in regions.packages] == ["scikit-image>=0.22"]
    assert regions.torch is None and regions.conflicts == []
    prediction = dependencies.plan("prediction", REQUIREMENTS, installed)
    assert [str(r) for r in prediction.packages] == ["scikit-image>=0.22", "safetensors>=0.4"]
    assert prediction.torch == dependencies.TORCH_REQUIREMENT
    question = prediction.confirmation()
    assert question.count("\n- ") == 3  # exactly the three things it will install
    for item in ("torch>=2.2 (through the PyTorch extension)", "scikit-image>=0.22", "safetensors>=0.4"):
        assert f"- {item}" in question


def test_plan_refuses_to_replace_an_installed_package():
    installed = {"scipy": "1.10.1", "torch": "2.1.0+cu118"}
    plan = dependencies.plan("prediction", REQUIREMENTS, installed)
    assert len(plan.conflicts) == 2
    assert "this Slicer has scipy 1.10.1, which must not be replaced" in plan.conflicts[0]
    assert "torch 2.1.0+cu118 is installed; BreastSubtype needs torch>=2.2" in plan.conflicts[1]
    assert "PyTorch Utils" in plan.conflicts[1]
    assert plan.torch is None and "scipy" not in [r.name for r in plan.packages]


def test_plan_on_this_environment_needs_nothing():
    """The test environment has everything the module needs: nothing would be installed."""
    plan = dependencies.plan("prediction", REQUIREMENTS)
    assert (plan.needed, plan.conflicts) == (False, [])


def test_constraints_pin_every_installed_distribution():
    installed = dependencies.installed_versions()
    lines = dependencies.constraint_lines(installed)
    for name in ("numpy", "simpleitk", "torch", "scipy"):
        assert f"{name}=={installed[name]}" in lines
    assert dependencies.constraint_lines({"weird": "not a version", "numpy": "2.1.0"}) == ["numpy==2.1.0"]


def test_pip_with_the_constraints_refuses_to_replace_slicer_s_numpy(tmp_path):
    """The real pip, offline: a requirement that would move an installed package fails to resolve
    under the constraints; one that the installed version meets is accepted as already satisfied."""
    constraints = dependencies.write_constraints(tmp_path)
    numpy = dependencies.installed_versions()["numpy"]
    other_major = "numpy<2" if int(numpy.split(".")[0]) >= 2 else "numpy>=2"
    refused = _pip("install", "--dry-run", "--no-index", "-c", str(constraints), other_major)
    assert refused.returncode != 0
    assert re.search(r"conflict|ResolutionImpossible|Cannot install", refused.stdout + refused.stderr, re.I)
    accepted = _pip("install", "--dry-run", "--no-index", "-c", str(constraints), "numpy>=1.26")
    assert accepted.returncode == 0, accepted.stderr
    assert "already satisfied" in accepted.stdout


def test_load_requirements_names_a_bad_line(tmp_path):
    bad = tmp_path / "requirements.txt"
    bad.write_text("scipy>=1.11\nnot a requirement!!\n")
    with pytest.raises(
        dependencies.DependencyError, match=r"requirements.txt, line 2: 'not a requirement!!'"
    ):
        dependencies.load_requirements(bad)


# --- the requirements are enough: run the real code with everything else blocked ----------------

_BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys
    ALLOWED = set(sys.argv[1].split(","))
    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in ALLOWED or top.startswith("_"):
                return None
            raise ModuleNotFoundError(f"No module named {name!r} (not in Slicer or the requirements)", name=name)
    sys.meta_path.insert(0, Blocked())
    del sys.argv[1]
    """
)
# What a Slicer has before the module installs anything (the slicer-core wheel stands for Slicer).
SLICER_DISTRIBUTIONS = ("slicer-core", "slicer-layer-dm", "numpy", "simpleitk", "packaging")
FIRST_PARTY = ("BreastSubtypeLib", "BreastSubtypeMRML", "BreastSubtypeModuleLib", "predict_helpers")


def _with_dependencies(names) -> set[str]:
    """The distributions pip would bring: ``names`` and, recursively, what they require."""
    seen: set[str] = set()
    stack = list(names)
    while stack:
        name = canonicalize_name(stack.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                stack.append(requirement.name)
    return seen


def _allowed(*distributions: str) -> str:
    """Top-level import names of Slicer's packages, the requirements (and torch when given)."""
    wanted = _with_dependencies([*SLICER_DISTRIBUTIONS, *distributions])
    tops = {
        top
        for top, dists in importlib.metadata.packages_distributions().items()
        if any(canonicalize_name(d) in wanted for d in dists)
    }
    return ",".join(sorted(tops | set(FIRST_PARTY)))


def _run_blocked(code: str, allowed: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "blocked.py"
    script.write_text(_BLOCKER + textwrap.dedent(code))
    env = paths.child_environment(module_dir=paths.MODULE_DIR)
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(
        [sys.executable, str(script), allowed], capture_output=True, text=True, env=env, timeout=300
    )


def test_one_click_tumour_and_rois_run_without_torch(tmp_path):
    """Demo, one-click and Generate ROIs must work before torch is installed: the MRML steps run with
    torch (and every package outside Slicer and the region requirements) blocked."""
    code = f"""
    import sys
    sys.path.insert(0, {str(ROOT / "Testing")!r})
    from predict_helpers import small_case
    from BreastSubtypeMRML import pipeline, segments, volumes
    from BreastSubtypeMRML.headless import headless_scene
    scene = headless_scene().scene
    case = small_case(seed=3)
    volume = volumes.volume_node_from_sitk(scene, case.image, "post-contrast")
    tumour = segments.new_segmentation_node(scene, "tumour", volume)
    segment_id = segments.set_tumour_segment(scene, tumour, case.tumour_mask)
    rois, result = pipeline.generate_rois(scene, volume, tumour, segment_id, 3.0, 5.0)
    import SimpleITK as sitk, numpy as np
    centre_kji = np.argwhere(sitk.GetArrayFromImage(case.tumour_mask)).mean(axis=0)
    seed = case.image.TransformContinuousIndexToPhysicalPoint([float(v) for v in centre_kji[::-1]])
    node, _, grown = pipeline.one_click_tumour(scene, volume, (-seed[0], -seed[1], seed[2]))
    assert "torch" not in sys.modules
    print(sorted(result.volumes_ml), grown.volume_ml > 0)
    """
    out = _run_blocked(code, _allowed(*dependencies.REGION_PACKAGES), tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[0] == "['core', 'peritumoral', 'rim', 'tumour'] True"


@pytest.mark.slow
def test_prediction_needs_only_torch_and_the_requirements(tmp_path):
    """The background predict with only Slicer's packages, torch and Resources/requirements.txt."""
    code = f"""
    import sys, runpy
    sys.path.insert(0, {str(ROOT / "Testing")!r})
    from predict_helpers import small_case
    from BreastSubtypeLib.imaging.io import write_image
    case = small_case(seed=3)
    write_image(case.image, {str(tmp_path / "image.nrrd")!r})
    write_image(case.tumour_mask, {str(tmp_path / "mask.nrrd")!r})
    sys.argv = ["breast-subtype", "predict", "--image", {str(tmp_path / "image.nrrd")!r},
                "--mask", {str(tmp_path / "mask.nrrd")!r}, "--out", {str(tmp_path / "out")!r},
                "--device", "cpu", "--progress-json"]
    runpy.run_module("BreastSubtypeLib.cli.main", run_name="__main__")
    """
    out = _run_blocked(code, _allowed("torch", *dependencies.requirement_names(REQUIREMENTS)), tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "out" / "prediction.json").is_file()
