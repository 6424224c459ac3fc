"""`breast-subtype demo`: phantom → one-click tumour → ROIs → prediction → report, offline, as a
user runs it (a real process). Uses the built-in demonstration model once it ships, else a random
package saved here (same pipeline, same outputs)."""

import json
import subprocess
import sys

import SimpleITK as sitk
from predict_helpers import random_model_package, same_grid

from BreastSubtypeLib.model import registry


def test_demo_writes_a_complete_report_and_says_it_is_a_demonstration(tmp_path):
    out = tmp_path / "demo-output"
    command = [
        sys.executable,
        "-m",
        "BreastSubtypeLib.cli.main",
        "demo",
        "--out",
        str(out),
        "--device",
        "cpu",
    ]
    if not registry.is_installed(registry.get_entry("demo")):
        command += ["--model", str(random_model_package(tmp_path / "model"))]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"Report: {out / 'report.html'}" in done.stdout
    assert "DEMONSTRATION model trained on synthetic phantoms" in done.stdout
    summary = json.loads((out / "prediction.json").read_text())
    assert summary["model"]["demonstration"] is True
    assert "DEMONSTRATION MODEL" in (out / "report.html").read_text()
    image = sitk.ReadImage(str(out / "phantom_image.nrrd"))
    for name in ("rois.nrrd", "attention.nrrd", "tumour_mask.nrrd", "gradcam_er.nrrd"):
        assert same_grid(sitk.ReadImage(str(out / name)), image), name
    assert summary["roi_volumes_ml"]["core"] > 0 and summary["roi_volumes_ml"]["peritumoral"] > 0
