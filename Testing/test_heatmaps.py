"""Heatmaps are evidence: attention is drawn only on the ROI tissue it weighs, Grad-CAM explains the
call that was made and stays near the lesion, and an empty map is said to be empty (issue 10).

Shares are measured on the input grid of phantoms with the shipped (demonstration) model, as a
radiologist would see them in Slicer: mass = sum of map values.
"""

import statistics

import pytest
import SimpleITK as sitk

from BreastSubtypeLib.inference.map_mass import distance_from_rois_mm, mass_share
from BreastSubtypeLib.inference.predict import load_model, predict
from BreastSubtypeLib.phantom import generate_phantom

FLIPPED = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
# Ten phantoms, lesions 8-32 mm in even steps, every other one stored with flipped axes.
CASES = [(21 + i, FLIPPED if i % 2 else None, 8.0 + 24.0 * i / 9) for i in range(10)]


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
    """Issue 10's target: >= 60 % of EVERY map's mass within 10 mm of the ROIs. Demonstration model
    0.10.0 reads no tissue beyond 10 mm of the ROIs (support_mm, since recipe 7), so only the
    upsampling of its 2 mm cells can spread a map past that line (lowest map 92 % on the 12-phantom
    benchmark, as for 0.9.0; 0.8.0's 91 %).
    Before it, locality was learned and varied by run: 0.7.1 kept at least 69.8 % here, its weights
    with Grad-CAM on stage 1 (0.7.0) 57.7 % (a 21 mm lesion), and 0.6.0 45 %."""
    shares: dict[str, list[float]] = {}
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
            shares.setdefault(name, []).append(share)
            call = "positive" if task != "ki67" else "high Ki-67"
            positive = getattr(result, task)["positive"] if task != "ki67" else result.ki67_percent >= 20
            assert (call in notes[name]["meaning"]) == positive, notes[name]
    for name, values in shares.items():
        assert statistics.median(values) >= 0.8, (name, values)


def test_cam_evidence_lies_only_where_the_output_depends_on_the_layer():
    """HiResCAM: a voxel whose activation the output ignores (zero gradient) gets no evidence, even
    when it shares a channel with the voxels that carry it; channel-mean Grad-CAM would light it."""
    import torch

    from BreastSubtypeLib.inference import explain

    activation = torch.ones(1, 2, 4, 4, 4)
    gradient = torch.zeros(1, 2, 4, 4, 4)
    gradient[0, 0, 1, 2, 3] = 2.0  # the output reads channel 0 at one voxel only
    cam = explain._cam_contributions(gradient, activation)
    expected = torch.zeros(1, 1, 4, 4, 4)
    expected[0, 0, 1, 2, 3] = 2.0
    assert torch.equal(cam, expected)
