"""predict(): the result contract, maps on the exact input grid for any orientation, determinism."""

import numpy as np
import pytest
import SimpleITK as sitk
from predict_helpers import FLIPPED, oblique_direction, random_model_package, same_grid, small_case

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.inference.predict import load_model, predict
from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return load_model(random_model_package(tmp_path_factory.mktemp("model") / "random"))


@pytest.fixture(scope="module")
def case():
    return small_case(3)


def test_result_carries_probabilities_calls_ki67_subtype_and_roi_weights(model, case):
    result = predict(case.image, case.tumour_mask, model, "cpu")
    for task, threshold in (("er", 0.5), ("pr", 0.45), ("her2", 0.55)):
        call = getattr(result, task)
        assert 0.0 <= call["probability"] <= 1.0
        assert call["threshold"] == threshold
        assert call["positive"] == (call["probability"] >= threshold)
    assert 0.0 <= result.ki67_percent <= 100.0
    assert result.subtype["scheme"] == "st_gallen_2013" and result.subtype["name"]
    assert set(result.roi_weights) == {"core", "rim", "peritumoral"}
    assert sum(result.roi_weights.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.model == {"id": "random-test", "version": "0.0.1", "demonstration": True}
    # One source for "demonstration model": the model record, not the case's warnings.
    assert not any("emonstration" in w for w in result.warnings)
    assert set(np.unique(sitk.GetArrayViewFromImage(result.roi.labelmap))) <= {0, CORE, RIM, PERITUMORAL}


def test_maps_cover_attention_scales_and_every_task_in_unit_range(model, case):
    result = predict(case.image, case.tumour_mask, model, "cpu")
    config = model.network.config
    scales = len(config.attention_scales) + (1 if config.fine_features else 0)  # fine: full resolution
    expected = {"attention_fused", *(f"attention_scale{i}" for i in range(scales))}
    expected |= {f"gradcam_{task}" for task in ("er", "pr", "her2", "ki67")}
    assert set(result.maps) == expected
    for name, image in result.maps.items():
        values = sitk.GetArrayViewFromImage(image)
        assert values.min() >= 0.0 and values.max() <= 1.0, name
        assert values.max() > 0.0, name


def test_no_explain_keeps_attention_but_skips_gradcam(model, case):
    result = predict(case.image, case.tumour_mask, model, "cpu", explain=False)
    assert "attention_fused" in result.maps and not any(n.startswith("gradcam") for n in result.maps)


@pytest.mark.parametrize("direction", [FLIPPED, oblique_direction(25.0)], ids=["flipped", "oblique"])
def test_maps_and_rois_lie_on_the_exact_input_grid(model, direction):
    case = small_case(5, direction=direction)
    result = predict(case.image, case.tumour_mask, model, "cpu")
    assert same_grid(result.roi.labelmap, case.image)
    for name, image in result.maps.items():
        assert same_grid(image, case.image), name
    # The attention is where the lesion is: its peak lies inside the tumour plus peritumoral band.
    fused = sitk.GetArrayFromImage(
        result.maps["attention_fused"]
    )  # maps are built on access: copy, never view a temporary
    labels = sitk.GetArrayViewFromImage(result.roi.labelmap)
    assert fused[labels > 0].mean() > fused[labels == 0].mean()
    assert result.input == {
        "size": list(case.image.GetSize()),
        "spacing_mm": list(case.image.GetSpacing()),
        "origin_mm": list(case.image.GetOrigin()),
        "direction": list(case.image.GetDirection()),
    }


def test_two_runs_on_one_device_are_identical(model, case):
    first = predict(case.image, case.tumour_mask, model, "cpu")
    second = predict(case.image, case.tumour_mask, model, "cpu")
    assert first.summary() | {"timings_s": {}} == second.summary() | {"timings_s": {}}
    for name in first.maps:
        assert np.array_equal(
            sitk.GetArrayFromImage(first.maps[name]), sitk.GetArrayFromImage(second.maps[name])
        )


def test_widths_default_to_the_models_and_can_be_overridden(model, case):
    default = predict(case.image, case.tumour_mask, model, "cpu", explain=False)
    wider = predict(case.image, case.tumour_mask, model, "cpu", explain=False, peri_mm=8.0)
    assert wider.roi.volumes_ml["peritumoral"] > default.roi.volumes_ml["peritumoral"]


def test_empty_mask_is_bad_input_naming_the_file(model, case):
    empty = sitk.Image(case.tumour_mask.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(case.tumour_mask)
    with pytest.raises(BadInputError, match="m.nrrd"):
        predict(case.image, empty, model, "cpu", mask_source="m.nrrd")


def test_absent_gpu_is_refused_plainly(model, case):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(BadInputError, match="no CUDA GPU"):
        predict(case.image, case.tumour_mask, model, "cuda")


def _edited_rois(model, case):
    """The model-width ROIs with the peritumoral band erased on the patient's right (low x) half."""
    from BreastSubtypeLib.rois.regions import compute_rois

    config = model.preprocessing_config
    computed = compute_rois(case.image, case.tumour_mask, rim_mm=config.rim_mm, peri_mm=config.peri_mm)
    labels = sitk.GetArrayFromImage(computed.labelmap)
    centre_i = int(np.mean(np.nonzero(labels == CORE)[2]))
    labels[:, :, :centre_i][labels[:, :, :centre_i] == PERITUMORAL] = 0
    edited = sitk.GetImageFromArray(labels)
    edited.CopyInformation(case.image)
    return computed, edited


def test_edited_roi_labelmap_is_used_exactly_as_given(model, case):
    computed, edited = _edited_rois(model, case)
    recomputed = predict(case.image, case.tumour_mask, model, "cpu", explain=False)
    result = predict(case.image, None, model, "cpu", rois=edited, explain=False)
    edited_labels = sitk.GetArrayViewFromImage(edited)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(result.roi.labelmap), edited_labels)
    assert same_grid(result.roi.labelmap, case.image)
    voxel_ml = float(np.prod(case.image.GetSpacing())) / 1000.0
    assert result.roi.volumes_ml["peritumoral"] == pytest.approx(
        (edited_labels == PERITUMORAL).sum() * voxel_ml
    )
    assert result.roi.volumes_ml["peritumoral"] < 0.8 * recomputed.roi.volumes_ml["peritumoral"]
    assert result.roi.volumes_ml["tumour"] == pytest.approx(recomputed.roi.volumes_ml["tumour"])
    # The network saw the edited band: its output moves.
    assert result.er["probability"] != recomputed.er["probability"]


def test_unedited_roi_labelmap_gives_the_same_prediction_as_the_mask(model, case):
    computed, _ = _edited_rois(model, case)
    from_mask = predict(case.image, case.tumour_mask, model, "cpu", explain=False)
    from_rois = predict(case.image, rois=computed.labelmap, model=model, device="cpu", explain=False)
    for task in ("er", "pr", "her2"):
        assert from_rois.summary()[task] == from_mask.summary()[task]
    assert from_rois.ki67_percent == from_mask.ki67_percent


def test_roi_labelmap_on_a_cropped_grid_is_put_back_on_the_image_grid(model, case):
    _, edited = _edited_rois(model, case)
    size = edited.GetSize()
    cropped = sitk.RegionOfInterest(edited, (size[0] - 8, size[1] - 8, size[2] - 4), (4, 4, 2))
    result = predict(case.image, None, model, "cpu", rois=cropped, explain=False)
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(result.roi.labelmap), sitk.GetArrayViewFromImage(edited)
    )


def test_roi_labelmap_with_a_foreign_label_is_bad_input_naming_the_file(model, case):
    _, edited = _edited_rois(model, case)
    wrong = sitk.GetArrayFromImage(edited)
    wrong[wrong == PERITUMORAL] = 4
    bad = sitk.GetImageFromArray(wrong)
    bad.CopyInformation(case.image)
    with pytest.raises(BadInputError, match=r"r\.nrrd holds the label 4"):
        predict(case.image, None, model, "cpu", rois=bad, rois_source="r.nrrd")


def test_roi_labelmap_without_tumour_is_bad_input(model, case):
    _, edited = _edited_rois(model, case)
    only_band = sitk.Cast(sitk.Equal(edited, PERITUMORAL), sitk.sitkUInt8) * PERITUMORAL
    with pytest.raises(BadInputError, match="r.nrrd has no tumour"):
        predict(case.image, None, model, "cpu", rois=only_band, rois_source="r.nrrd")


def test_mask_and_roi_labelmap_together_or_widths_with_rois_are_refused(model, case):
    _, edited = _edited_rois(model, case)
    with pytest.raises(BadInputError, match="not both"):
        predict(case.image, case.tumour_mask, model, "cpu", rois=edited)
    with pytest.raises(BadInputError, match="widths apply only"):
        predict(case.image, None, model, "cpu", rois=edited, rim_mm=2.0)
