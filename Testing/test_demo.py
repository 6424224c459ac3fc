"""`breast-subtype demo`: phantom → one-click tumour → ROIs → prediction → report, offline, as a
user runs it (a real process), with the built-in demonstration model."""

import json
import subprocess
import sys

import SimpleITK as sitk
from predict_helpers import same_grid

from BreastSubtypeLib.model.package import load_model_package


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
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"Report: {out / 'report.html'}" in done.stdout
    assert "DEMONSTRATION model trained on synthetic phantoms" in done.stdout
    summary = json.loads((out / "prediction.json").read_text(encoding="utf-8"))
    assert summary["model"]["demonstration"] is True
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "DEMONSTRATION MODEL" in report
    # The model card's held-out figures appear as a table, e.g. the test ER AUC with its CI.
    test_er = load_model_package("demo").metadata["metrics"]["test"]["er"]
    assert (
        f"<td>ER AUC</td><td>{test_er['auc']:.3f} ({test_er['ci_low']:.2f}-{test_er['ci_high']:.2f})</td>"
        in report
    )
    assert "{'" not in report  # no raw Python dicts
    image = sitk.ReadImage(str(out / "phantom_image.nrrd"))
    for name in ("rois.nrrd", "attention.nrrd", "tumour_mask.nrrd", "gradcam_er.nrrd"):
        assert same_grid(sitk.ReadImage(str(out / name)), image), name
    assert summary["roi_volumes_ml"]["core"] > 0 and summary["roi_volumes_ml"]["peritumoral"] > 0
