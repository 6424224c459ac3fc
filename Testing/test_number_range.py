"""A lesion far outside the training cohort: its numbers are held at the limit and the reader is told."""

import pytest
import torch
from predict_helpers import small_case

from BreastSubtypeLib.inference.number_range import numbers_beyond_training
from BreastSubtypeLib.inference.predict import load_model, predict
from BreastSubtypeLib.model.config import NUMBER_LIMIT_SD, SCALAR_FEATURES, NetworkConfig
from BreastSubtypeLib.model.network import SpatialMultiTaskNet

CONTRAST = SCALAR_FEATURES.index("peritumoral_0_1mm_contrast")


def _trained_statistics(network, mean: float = 0.5, sd: float = 0.1):
    network.scalar_norm.mean.fill_(mean)
    network.scalar_norm.var.fill_(sd * sd)
    return network.eval()


def _net(**overrides):
    torch.manual_seed(0)
    config = NetworkConfig(widths=(8, 16, 32, 64)).with_overrides(overrides)
    network = _trained_statistics(SpatialMultiTaskNet(config))
    for skip in network.scalar_skip.values():  # a linear path that reads the numbers, as trained ones do
        torch.nn.init.normal_(skip.weight)
    return network


def _outputs(network, contrast: float):
    image = torch.rand(1, 4, 32, 32, 32, generator=torch.Generator().manual_seed(1))
    image[:, 1:] = (image[:, 1:] > 0.6).float()
    scalars = torch.full((1, network.config.n_scalar_features), 0.5)
    scalars[0, CONTRAST] = contrast
    with torch.no_grad():
        return network(image, scalars)


def test_a_number_beyond_the_limit_is_read_at_the_limit_and_one_within_it_as_it_is():
    network = _net()
    assert network.config.scalar_limit_sd == NUMBER_LIMIT_SD == 6.0
    # 0.5 + 17 SD of 0.1 = 2.2 (a contrast 17 SD out, as the development phantom that prompted this);
    # 1.4 is 9 SD out, 1.0 5 SD.
    far, also_far, within = _outputs(network, 2.2), _outputs(network, 1.4), _outputs(network, 1.0)
    assert float(far["numbers_sd"][0, CONTRAST]) == pytest.approx(17.0, rel=1e-4)
    assert float(far["numbers"][0, CONTRAST]) == pytest.approx(6.0, rel=1e-4)
    assert float(within["numbers"][0, CONTRAST]) == pytest.approx(5.0, rel=1e-4)
    for key in ("er", "pr", "her2", "ki67_percent"):
        assert float(far[key]) == float(also_far[key]), key
        # relative: a random linear read may put Ki-67 deep in its sigmoid's tail, near 0 %
        assert float(far[key]) != pytest.approx(float(within[key]), rel=1e-3), key


def test_packages_before_the_limit_read_every_number_in_proportion():
    assert NetworkConfig.from_package({"scalar_norm": True}).scalar_limit_sd == 0.0
    network = _net(scalar_limit_sd=0.0)
    far, also_far = _outputs(network, 2.2), _outputs(network, 1.4)
    assert float(far["numbers"][0, CONTRAST]) == pytest.approx(17.0, rel=1e-4)
    assert abs(float(far["er"]) - float(also_far["er"])) > 1e-3


def test_the_warning_names_each_far_number_in_the_readers_words_with_its_distance():
    standardised = torch.zeros(1, len(SCALAR_FEATURES))
    standardised[0, CONTRAST] = 17.04
    standardised[0, SCALAR_FEATURES.index("rim_core_ratio")] = -8.26
    standardised[0, 0] = 5.9  # within: not named
    (line,) = numbers_beyond_training({"numbers_sd": standardised}, 6.0)
    assert line == (
        "This lesion lies far outside the cohort the model learned from (Core enhancement as a fraction "
        "of the rim's (washout, rim enhancement) -8.3 SD; Peritumoral 0-1 mm enhancement relative to the "
        "rim (oedema) +17.0 SD from the training cases' mean; the model reads none beyond 6 SD): its "
        "calls are an extrapolation."
    )
    assert "reads them in proportion" in numbers_beyond_training({"numbers_sd": standardised}, 0.0)[0]
    assert numbers_beyond_training({"numbers_sd": torch.full((1, 25), 5.99)}, 6.0) == []
    assert numbers_beyond_training({}, 6.0) == []  # no standardised numbers: nothing to compare with


def test_predict_tells_the_reader_when_a_cases_number_lies_far_outside_the_training_cohort(tmp_path):
    from BreastSubtypeLib.model.config import PreprocessingConfig
    from BreastSubtypeLib.model.package import save_model_package

    case = small_case(3)
    preprocessing = PreprocessingConfig(crop_size_voxels=(32, 32, 32), target_spacing_mm=1.0)

    def predicted_with(network, name):
        save_model_package(
            network, network.config, preprocessing, tmp_path / name,
            metadata={"id": name, "version": "0.0.1", "demonstration": True},
            model_card_markdown="# Test model\n", license_text="Apache-2.0\n",
        )  # fmt: skip
        return predict(case.image, case.tumour_mask, load_model(tmp_path / name), "cpu", explain=False)

    network = _net()
    network.scalar_norm.mean.fill_(0.0)
    network.scalar_norm.var.fill_(1e6)  # a cohort of every kind of lesion: nothing is far out
    wide = predicted_with(network, "wide")
    assert not any(w.startswith("This lesion lies far outside") for w in wide.warnings)
    # A cohort whose 0-1 mm contrasts sat 0.7 below this case's with an SD of 0.1: 7 SD out.
    measured = wide.margin_profile["values"]["peritumoral_0_1mm_contrast"]
    network.scalar_norm.mean[CONTRAST] = measured - 0.7
    network.scalar_norm.var[CONTRAST] = 0.01 - 1e-6  # the standardiser adds eps 1e-6
    narrow = predicted_with(network, "narrow")
    far = [w for w in narrow.warnings if w.startswith("This lesion lies far outside")]
    assert far == [
        "This lesion lies far outside the cohort the model learned from (Peritumoral 0-1 mm enhancement "
        "relative to the rim (oedema) +7.0 SD from the training cases' mean; the model reads none "
        "beyond 6 SD): its calls are an extrapolation."
    ]
    assert far[0] in narrow.summary()["warnings"]


def test_a_number_held_at_the_limit_is_credited_with_what_it_contributed_there():
    from contextlib import nullcontext

    from BreastSubtypeLib.inference.explain import forward_with_explanations

    network = _net()
    image = torch.rand(1, 4, 32, 32, 32, generator=torch.Generator().manual_seed(1))
    image[:, 1:] = (image[:, 1:] > 0.6).float()
    evidence = []
    for contrast in (2.2, 1.4):  # 17 and 9 SD out: both read at 6 SD
        scalars = torch.full((1, network.config.n_scalar_features), 0.5)
        scalars[0, CONTRAST] = contrast
        outputs, _maps = forward_with_explanations(
            network, image, scalars, tasks=network.tasks, explain=True, autocast=nullcontext()
        )
        evidence.append(float(outputs["margin_evidence_her2"][0, CONTRAST - 2]))
    assert evidence[0] == pytest.approx(evidence[1], rel=1e-5) and abs(evidence[0]) > 1e-3
