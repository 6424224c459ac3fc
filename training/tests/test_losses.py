import math

import pytest
import torch

from BreastSubtypeTraining.losses import MultiTaskLoss


def _outputs(batch=4, requires_grad=True):
    torch.manual_seed(0)
    outputs = {task: torch.randn(batch, requires_grad=requires_grad) for task in ("er", "pr", "her2")}
    outputs["ki67_percent"] = (torch.rand(batch) * 60).requires_grad_(requires_grad)
    return outputs


def test_all_labels_missing_gives_exact_zero_and_finite_zero_gradient():
    outputs = _outputs()
    nan = torch.full((4,), float("nan"))
    labels = {"er": nan, "pr": nan, "her2": nan, "ki67_percent": nan}
    total, per_task = MultiTaskLoss()(outputs, labels)
    assert total.item() == 0.0
    assert per_task == {"er": 0.0, "pr": 0.0, "her2": 0.0, "ki67_percent": 0.0}
    total.backward()
    for tensor in outputs.values():
        assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum().item() == 0.0


def test_missing_task_key_and_mask_count_as_unknown():
    outputs = _outputs()
    labels = {"er": torch.tensor([1.0, 0.0, 1.0, 0.0])}
    known = {"er": torch.tensor([True, True, False, False])}
    total, per_task = MultiTaskLoss()(outputs, labels, known)
    logits = outputs["er"][:2].detach()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([1.0, 0.0]))
    assert per_task["er"] == pytest.approx(expected.item(), rel=1e-6)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert per_task["ki67_percent"] == 0.0


def test_ki67_is_scaled_to_fraction_and_mse_matches_hand_value():
    outputs = {"ki67_percent": torch.tensor([30.0, 10.0])}
    labels = {"ki67_percent": torch.tensor([20.0, float("nan")])}
    loss = MultiTaskLoss(tasks=("ki67_percent",), ki67_loss="mse")
    total, _ = loss(outputs, labels)
    assert total.item() == pytest.approx(0.1**2)
    huber = MultiTaskLoss(tasks=("ki67_percent",), huber_delta=0.05)(outputs, labels)[0]
    assert huber.item() == pytest.approx(0.05 * (0.1 - 0.5 * 0.05))  # linear beyond delta
    l1 = MultiTaskLoss(tasks=("ki67_percent",), ki67_loss="l1", ki67_scale_percent=4.0)(outputs, labels)[0]
    assert l1.item() == pytest.approx(10.0 / 4.0)  # |30 - 20| points in units of 4 points


def test_task_weights_and_single_task_mode():
    outputs = _outputs()
    labels = {task: torch.tensor([1.0, 0.0, 1.0, 1.0]) for task in ("er", "pr", "her2")}
    labels["ki67_percent"] = torch.tensor([10.0, 20.0, 30.0, 40.0])
    single, per_task = MultiTaskLoss(tasks=("her2",))(outputs, labels)
    assert set(per_task) == {"her2"}
    weighted, _ = MultiTaskLoss(tasks=("her2",), weights={"her2": 3.0})(outputs, labels)
    assert weighted.item() == pytest.approx(3.0 * single.item(), rel=1e-6)
    with pytest.raises(ValueError):
        MultiTaskLoss(tasks=("luminal",))


def test_uncertainty_weighting_starts_at_plain_sum_and_learns_log_variances():
    outputs = _outputs()
    labels = {task: torch.tensor([1.0, 0.0, 1.0, 1.0]) for task in ("er", "pr", "her2")}
    labels["ki67_percent"] = torch.tensor([10.0, 20.0, 30.0, 40.0])
    loss = MultiTaskLoss(uncertainty_weighting=True)
    total, per_task = loss(outputs, labels)
    # s = 0: classification weight 1, Ki-67 weight 1/2, regularisers 0.
    expected = per_task["er"] + per_task["pr"] + per_task["her2"] + 0.5 * per_task["ki67_percent"]
    assert total.item() == pytest.approx(expected, rel=1e-5)
    total.backward()
    grad = loss.log_variances.grad
    assert torch.isfinite(grad).all()
    # d/ds [exp(-s) L + s/2] at s=0 is 1/2 - L.
    assert grad[0].item() == pytest.approx(0.5 - per_task["er"], rel=1e-5)


def test_uncertainty_weighting_skips_regulariser_of_unlabelled_task():
    outputs = _outputs()
    nan = torch.full((4,), float("nan"))
    loss = MultiTaskLoss(uncertainty_weighting=True)
    with torch.no_grad():
        loss.log_variances.fill_(1.5)
    total, _ = loss(outputs, {"er": nan, "pr": nan, "her2": nan, "ki67_percent": nan})
    assert total.item() == 0.0 and not math.isnan(total.item())


def test_log_ki67_loss_weighs_relative_errors():
    """log(1 + Ki-67 %) in units of ki67_log_scale: 3 % called 7 % costs what 39 % called 79 % does
    (both a factor of 2 on 1 + percent); on the percent scale the second costs 10 times more."""
    loss = MultiTaskLoss(tasks=("ki67_percent",), ki67_loss="log", ki67_log_scale=0.5, huber_delta=10.0)
    low = loss({"ki67_percent": torch.tensor([7.0])}, {"ki67_percent": torch.tensor([3.0])})[0]
    high = loss({"ki67_percent": torch.tensor([79.0])}, {"ki67_percent": torch.tensor([39.0])})[0]
    expected = 0.5 * (math.log(2.0) / 0.5) ** 2  # quadratic within delta
    assert low.item() == pytest.approx(expected, rel=1e-5)
    assert high.item() == pytest.approx(expected, rel=1e-5)


def test_an_unknown_ki67_loss_is_refused_before_training():
    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeTraining.config import TrainingConfig

    with pytest.raises(BadInputError, match="ki67_loss must be one of huber, mse, l1, log, got 'cubic'"):
        TrainingConfig.from_dict({"ki67_loss": "cubic"})


@pytest.mark.parametrize("penalty", [{"ki67": -1}, {"ki-67": 1.0}, {"er": "high"}, [1.0]])
def test_a_deep_penalty_that_is_not_tasks_to_non_negative_numbers_is_refused_by_name(penalty):
    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeTraining.config import TrainingConfig

    assert TrainingConfig.from_dict({"deep_penalty": {"ki67": 0.5, "er": 2}}).deep_penalty == {
        "ki67": 0.5,
        "er": 2,
    }
    with pytest.raises(BadInputError, match="deep_penalty must map tasks"):
        TrainingConfig.from_dict({"deep_penalty": penalty})


def test_a_deep_penalty_without_the_linear_path_is_refused_and_earlier_recipes_are_accepted():
    from pathlib import Path

    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeLib.model.config import SCALAR_FEATURES
    from BreastSubtypeTraining.config import TrainingConfig, build_configs, load_training_config

    with pytest.raises(
        BadInputError, match=r"deep_penalty \(er, her2, ki67, pr\) needs the linear read of the numbers"
    ):
        build_configs(TrainingConfig.from_dict({"network": {"scalar_skip": False}}))
    configs = Path(__file__).parents[1] / "BreastSubtypeTraining" / "configs"
    network, _ = build_configs(load_training_config(configs / "recipe5.yaml"))
    assert (network.scalar_skip, network.support_mm) == (False, 0.0)
    recipe6 = load_training_config(configs / "recipe6.yaml")
    network, _ = build_configs(recipe6)
    assert (network.scalar_skip, network.support_mm, recipe6.deep_penalty) == (True, 0.0, {"ki67": 10.0})
    assert recipe6.linear_lr_factor == 1.0
    recipe7 = load_training_config(configs / "recipe7.yaml")
    network, _ = build_configs(recipe7)
    assert (network.support_mm, recipe7.linear_lr_factor, network.log_numbers) == (10.0, 1.0, ())
    network, _ = build_configs(load_training_config(configs / "recipe8.yaml"))
    assert network.log_numbers == () and network.support_mm == 10.0
    for recipe in (5, 6, 7, 8, 9):  # recipes 4 to 9 read the first 21 numbers
        network, _ = build_configs(load_training_config(configs / f"recipe{recipe}.yaml"))
        assert network.n_scalar_features == 21, recipe
        assert network.scalar_limit_sd == 0.0, recipe  # every number read in proportion until recipe 11
    assert network.log_numbers == ("tumour_local_texture",)  # recipe 9
    network, _ = build_configs(load_training_config(configs / "recipe10.yaml"))
    assert (network.n_scalar_features, network.scalar_limit_sd) == (24, 0.0)
    network, _ = build_configs(load_training_config(configs / "recipe11.yaml"))
    assert (network.n_scalar_features, network.scalar_limit_sd) == (24, 6.0)
    network, _ = build_configs(load_training_config(configs / "recipe12.yaml"))
    assert (network.n_scalar_features, network.scalar_limit_sd) == (25, 6.0)
    recipe13 = load_training_config(configs / "recipe13.yaml")
    assert build_configs(recipe13)[0].n_scalar_features == 26
    for recipe in range(5, 14):  # every recipe before 14 read its numbers without an L1 penalty
        assert load_training_config(configs / f"recipe{recipe}.yaml").linear_l1 == {}, recipe
    assert load_training_config(configs / "demo.yaml").linear_l1 == {}
    assert recipe7.deep_penalty == {"ki67": 10.0, "er": 1.0, "pr": 1.0, "her2": 1.0}
    default = TrainingConfig()
    network, _ = build_configs(default)
    assert (network.scalar_skip, network.support_mm) == (True, 10.0)
    assert default.deep_penalty == {"ki67": 10.0, "er": 1.0, "pr": 1.0, "her2": 1.0}
    assert default.linear_lr_factor == 10.0
    assert network.log_numbers == ("tumour_local_texture", "tumour_profile_texture")
    assert network.n_scalar_features == len(SCALAR_FEATURES) - 2 == 26  # recipe 13
    assert SCALAR_FEATURES[24:26] == ("peritumoral_amplitude", "tumour_to_rim_signal")
    assert network.scalar_limit_sd == 6.0


def test_the_read_penalties_add_the_deep_logits_variance_and_the_linear_reads_absolute_weights():
    import torch

    from BreastSubtypeLib.model.network import SpatialMultiTaskNet
    from BreastSubtypeTraining.config import TrainingConfig, build_configs
    from BreastSubtypeTraining.train import read_penalties

    config = TrainingConfig.from_dict({"deep_penalty": {"ki67": 2.0}, "linear_l1": {"her2": 0.5, "er": 0.0}})
    network = SpatialMultiTaskNet(build_configs(config)[0])
    with torch.no_grad():
        for layer in network.scalar_skip.values():
            layer.weight.zero_()
        network.scalar_skip["her2"].weight[0, :3] = torch.tensor([1.5, -2.0, 0.25])
        network.scalar_skip["er"].weight[0, 0] = 7.0  # er's penalty is 0: not read
    outputs = {"deep_logits": {"ki67": torch.tensor([1.0, 3.0]), "her2": torch.tensor([0.0, 10.0])}}
    # ki67: 2 x variance 1.0 = 2.0; her2: 0.5 x (1.5 + 2.0 + 0.25) = 1.875
    assert float(read_penalties(network, outputs, config)) == pytest.approx(3.875, abs=1e-6)
    plain = TrainingConfig.from_dict({"deep_penalty": {}, "linear_l1": {}})
    assert float(read_penalties(network, outputs, plain)) == 0.0
    # recipe 14, the default, reads the receptors' numbers sparsely; Ki-67 keeps its plain read
    assert TrainingConfig().linear_l1 == {"er": 0.024, "pr": 0.024, "her2": 0.024}


@pytest.mark.parametrize("penalty", [{"her2": -0.1}, {"HER2": 0.1}, {"er": True}, [0.1]])
def test_a_linear_l1_that_is_not_tasks_to_non_negative_numbers_is_refused_by_name(penalty):
    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeTraining.config import TrainingConfig, build_configs

    with pytest.raises(BadInputError, match="linear_l1 must map tasks"):
        TrainingConfig.from_dict({"linear_l1": penalty})
    with pytest.raises(BadInputError, match=r"linear_l1 \(her2\) needs the linear read of the numbers"):
        build_configs(
            TrainingConfig.from_dict(
                {"linear_l1": {"her2": 0.1}, "deep_penalty": {}, "network": {"scalar_skip": False}}
            )
        )
