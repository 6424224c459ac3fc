"""Heatmaps are evidence: attention is drawn only on the ROI tissue it weighs, Grad-CAM explains the
call that was made and stays near the lesion, and an empty map is said to be empty (issue 10).

Shares are measured on the input grid of phantoms with the shipped (demonstration) model, as a
radiologist would see them in Slicer: mass = sum of map values.
"""

import pytest
import SimpleITK as sitk

from BreastSubtypeLib.inference.map_mass import distance_from_rois_mm, mass_share
from BreastSubtypeLib.inference.predict import load_model, predict
from BreastSubtypeLib.phantom import generate_phantom

FLIPPED = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
CASES = [  # (seed, direction, lesion diameter mm): small and large lesions, flipped storage
    (21, None, 10.0),
    (22, FLIPPED, 18.0),
    (23, None, 26.0),
    (24, FLIPPED, 14.0),
]


@pytest.fixture(scope="module")
def predictions():
    model = load_model("demo")
    out = []
    for seed, direction, diameter in CASES:
        case = generate_phantom(
            seed, size_ijk=(96, 96, 40), spacing_mm=(0.8, 0.8, 1.5), direction=direction,
            lesion_diameter_mm=diameter,
        )  # fmt: skip
        out.append(predict(case.image, case.tumour_mask, model, "cpu"))
    return out


def test_attention_is_drawn_only_on_the_rois(predictions):
    for result in predictions:
        inside = sitk.GetArrayViewFromImage(result.roi.labelmap) > 0
        for name in [n for n in result.maps if n.startswith("attention")]:
            share = mass_share(result.maps[name], inside)
            assert share is not None and share >= 0.8, (name, share)


def test_gradcam_explains_every_call_near_the_lesion_or_says_it_is_empty(predictions):
    for result in predictions:
        distance = distance_from_rois_mm(result.roi.labelmap)
        notes = result.map_notes
        for task in ("er", "pr", "her2", "ki67"):
            name = f"gradcam_{task}"
            share = mass_share(result.maps[name], distance <= 10.0)
            if notes[name]["empty"]:
                assert share is None, name
                continue
            assert share is not None and share >= 0.6, (name, share)
            call = "positive" if task != "ki67" else "high Ki-67"
            positive = getattr(result, task)["positive"] if task != "ki67" else result.ki67_percent >= 20
            assert (call in notes[name]["meaning"]) == positive, notes[name]
