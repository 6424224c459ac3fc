"""No behaviour change: the demo model on a fixed reference phantom gives the committed figures.

``Testing/data/reference_case/`` holds one phantom (image and tumour mask, committed as files so a
change of the phantom generator cannot move them) and ``expected.json``: the ``prediction.json``
the demo model wrote for it (timings aside), the SHA-256 of ``rois.nrrd``'s labels and statistics of
every map written on the input grid. Refactoring the pipeline must leave all of it unchanged.

The expected values belong to one demo model (version and weights SHA-256). After a deliberate
change (a retrained demo model, a new heatmap method), regenerate them and commit the new file:

    BREAST_SUBTYPE_REGENERATE_REFERENCE=1 .venv/bin/python -m pytest Testing/test_reference_case.py

The reference phantom was made with ``generate_phantom(11, size_ijk=(96, 96, 40),
spacing_mm=(0.75, 0.75, 1.6), direction=<20 degrees about z>, lesion_diameter_mm=16.0)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from BreastSubtypeLib.inference.outputs import map_value_scale, write_case_outputs
from BreastSubtypeLib.inference.predict import load_model, predict

DATA = Path(__file__).resolve().parent / "data" / "reference_case"
EXPECTED = DATA / "expected.json"
REGENERATE = "BREAST_SUBTYPE_REGENERATE_REFERENCE"
REGENERATE_COMMAND = f"{REGENERATE}=1 .venv/bin/python -m pytest Testing/test_reference_case.py"
# Same machine: bit for bit. Another CPU may round float32 sums differently in the last digits.
ABS_TOLERANCE = 1e-5


def _array(path: Path) -> tuple[sitk.Image, np.ndarray]:
    image = sitk.ReadImage(str(path))
    return image, sitk.GetArrayFromImage(image)


def _map_statistics(values: np.ndarray, labels: np.ndarray, image: sitk.Image) -> dict:
    """What a map looks like: its mass, peak, where its mass lies (mm) and its mean in each region."""
    values = values.astype(np.float64)
    total = float(values.sum())
    k, j, i = np.indices(values.shape)
    centroid_index = [float((axis * values).sum() / total) if total else 0.0 for axis in (i, j, k)]
    return {
        "sum": total,
        "max": float(values.max()),
        "centroid_mm": list(image.TransformContinuousIndexToPhysicalPoint(centroid_index)),
        "mean_tumour": float(values[(labels == 1) | (labels == 2)].mean()),
        "mean_peritumoral": float(values[labels == 3].mean()),
        "mean_outside": float(values[labels == 0].mean()),
    }


def _observed(out_dir: Path) -> dict:
    loaded = load_model("demo")
    image = sitk.ReadImage(str(DATA / "image.nrrd"))
    mask = sitk.ReadImage(str(DATA / "tumour_mask.nrrd"))
    prediction = predict(
        image, mask, loaded, "cpu", image_source="image.nrrd", mask_source="tumour_mask.nrrd"
    )
    write_case_outputs(prediction, out_dir)
    summary = json.loads((out_dir / "prediction.json").read_text(encoding="utf-8"))
    summary.pop("timings_s")
    value_scale = map_value_scale(summary)  # 8-bit map files: value = stored x value_scale
    rois_image, labels = _array(out_dir / "rois.nrrd")
    maps = {}
    for path in sorted(out_dir.glob("*.nrrd")):
        if path.name != "rois.nrrd":
            map_image, values = _array(path)
            maps[path.name] = _map_statistics(values * value_scale, labels, map_image)
    return {
        "model": {"version": str(loaded.metadata.get("version")), "weights_sha256": loaded.weights_sha256},
        "prediction_json": summary,
        "rois_sha256": hashlib.sha256(np.ascontiguousarray(labels, np.uint8).tobytes()).hexdigest(),
        "rois_counts": {str(v): int(n) for v, n in zip(*np.unique(labels, return_counts=True))},
        "maps": maps,
    }


def _differences(expected, observed, path: str = "") -> list[str]:
    """Every place where ``observed`` departs from ``expected`` (floats within ABS_TOLERANCE)."""
    if isinstance(expected, dict) and isinstance(observed, dict):
        found = (
            [f"{path}: keys {sorted(set(expected) ^ set(observed))} differ"]
            if set(expected) != set(observed)
            else []
        )
        for key in set(expected) & set(observed):
            found += _differences(expected[key], observed[key], f"{path}.{key}")
        return found
    if isinstance(expected, list) and isinstance(observed, list) and len(expected) == len(observed):
        return [
            d for n, (e, o) in enumerate(zip(expected, observed)) for d in _differences(e, o, f"{path}[{n}]")
        ]
    if isinstance(expected, float) and isinstance(observed, int | float) and not isinstance(observed, bool):
        if math.isclose(expected, observed, rel_tol=ABS_TOLERANCE, abs_tol=ABS_TOLERANCE):
            return []
    elif expected == observed and type(expected) is type(observed):
        return []
    return [f"{path}: expected {expected!r}, got {observed!r}"]


def test_reference_phantom_gives_the_committed_prediction_and_maps(tmp_path):
    observed = _observed(tmp_path / "case")
    if os.environ.get(REGENERATE):
        EXPECTED.write_text(json.dumps(observed, indent=1) + "\n", encoding="utf-8")
        pytest.skip(f"regenerated {EXPECTED}; review and commit it")
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    if expected["model"] != observed["model"]:
        pytest.fail(
            f"The demo model changed ({expected['model']} -> {observed['model']}). If that was deliberate, "
            f"regenerate the reference values with `{REGENERATE_COMMAND}` and commit {EXPECTED.name}."
        )
    differences = _differences(expected, observed)
    assert not differences, (
        "The pipeline's output changed for the reference phantom:\n"
        + "\n".join(differences[:20])
        + f"\nIf the change is deliberate, regenerate with `{REGENERATE_COMMAND}`."
    )
