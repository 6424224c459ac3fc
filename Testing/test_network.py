"""SpatialMultiTaskNet and its configs: every ablation trains, outputs keep their contract."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from BreastSubtypeLib.model.config import (
    ABLATIONS,
    SCALAR_FEATURES,
    ConfigError,
    NetworkConfig,
    PreprocessingConfig,
    ablation_config,
)
from BreastSubtypeLib.model.network import SpatialMultiTaskNet, count_parameters

SIDE = 32
TASK_KEYS = ("er", "pr", "her2", "ki67_percent")


def make_batch(batch: int = 2, side: int = SIDE, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Image noise plus concentric core / rim / peritumoral spheres (one-hot, like preprocessing)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.zeros(batch, 4, side, side, side)
    x[:, 0] = torch.randn(batch, side, side, side, generator=generator)
    grid = torch.stack(torch.meshgrid(*[torch.arange(side, dtype=torch.float32)] * 3, indexing="ij"))
    radius = (grid - (side - 1) / 2).norm(dim=0)
    core, rim, peri = (
        radius < side * 0.15,
        (radius >= side * 0.15) & (radius < side * 0.25),
        (radius >= side * 0.25) & (radius < side * 0.35),
    )
    for channel, region in enumerate((core, rim, peri), start=1):
        x[:, channel] = region.float()
    scalars = torch.randn(batch, len(SCALAR_FEATURES), generator=generator)
    return x, scalars


@pytest.mark.parametrize("ablation", list(ABLATIONS))
def test_every_ablation_runs_forward_and_backward_with_finite_gradients(ablation):
    torch.manual_seed(0)
    net = SpatialMultiTaskNet(ablation_config(ablation)).train()
    x, scalars = make_batch()
    out = net(x, scalars)
    for key in TASK_KEYS:
        assert out[key].shape == (2,)
    assert out["roi_weights"].shape == (2, 3)
    assert out["attention_fused"].shape == (2, 1, SIDE, SIDE, SIDE)
    expected_maps = {"multi": 3, "single": 1, "none": 0}[net.config.attention]
    sides = [SIDE // 2 ** (s + 1) for s in net.config.attention_scales[:expected_maps]]
    assert [tuple(a.shape) for a in out["attention"]] == [(2, 1, n, n, n) for n in sides]
    loss = sum(out[k].float().pow(2).mean() for k in TASK_KEYS)
    loss.backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert net.cam_layer(net.tasks[0])[0].conv1[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("ablation", ["full", "single_scale_attention", "no_shared_extractor"])
def test_attention_maps_lie_in_unit_interval(ablation):
    net = SpatialMultiTaskNet(ablation_config(ablation)).eval()
    with torch.no_grad():
        out = net(*make_batch())
    for a in [*out["attention"], out["attention_fused"]]:
        assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_no_attention_gives_a_uniform_fused_map():
    with torch.no_grad():
        out = SpatialMultiTaskNet(ablation_config("no_attention")).eval()(*make_batch())
    assert out["attention"] == []
    assert torch.equal(out["attention_fused"], torch.ones(2, 1, SIDE, SIDE, SIDE))


@pytest.mark.parametrize(
    ("ablation", "hidden"), [("full", []), ("no_peritumoral", [2]), ("core_only", [1, 2])]
)
def test_roi_weights_sum_to_one_and_hidden_regions_get_none(ablation, hidden):
    net = SpatialMultiTaskNet(ablation_config(ablation)).eval()
    with torch.no_grad():
        weights = net(*make_batch())["roi_weights"]
    assert torch.allclose(weights.sum(dim=1), torch.ones(2), atol=1e-6)
    for region in range(3):
        if region in hidden:
            assert float(weights[:, region].max()) < 1e-6
        else:
            assert float(weights[:, region].min()) > 0.01


def test_a_region_absent_from_the_case_gets_no_weight():
    x, scalars = make_batch()
    x[:, 3] = 0  # no peritumoral band (e.g. lesion against the chest wall)
    with torch.no_grad():
        weights = SpatialMultiTaskNet().eval()(x, scalars)["roi_weights"]
    assert float(weights[:, 2].max()) < 1e-6
    assert torch.allclose(weights.sum(dim=1), torch.ones(2), atol=1e-6)


@pytest.mark.parametrize(
    ("ablation", "changes"), [("full", True), ("no_peritumoral", False), ("core_only", False)]
)
def test_hidden_peritumoral_tissue_cannot_change_the_prediction(ablation, changes):
    torch.manual_seed(0)
    net = SpatialMultiTaskNet(ablation_config(ablation)).eval()
    x, scalars = make_batch(batch=1)
    altered = x.clone()
    altered[:, 0][x[:, 3] > 0] += 5.0  # brighten the peritumoral band only
    with torch.no_grad():
        before, after = net(x, scalars), net(altered, scalars)
    difference = max(float((before[k] - after[k]).abs().max()) for k in TASK_KEYS)
    assert (difference > 1e-4) is changes


def test_tissue_beyond_the_support_changes_nothing_and_gets_no_cam_evidence():
    """support_mm: the network reads nothing farther than that from the ROIs. Crop of 1 mm voxels;
    the ROIs end 11.2 voxels from the centre, so with 4 mm of support the corners (> 20 mm away) are
    unread: brightening them changes no output, and the CAM layer's gradient x activation is zero
    on every stage-0 cell without a support voxel."""
    torch.manual_seed(0)
    net = SpatialMultiTaskNet(NetworkConfig(support_mm=4.0)).eval()
    x, scalars = make_batch(batch=1)
    scalars[:, 1] = 0.0  # log crop spacing: 1 mm
    grid = torch.stack(torch.meshgrid(*[torch.arange(SIDE, dtype=torch.float32)] * 3, indexing="ij"))
    far = (grid - (SIDE - 1) / 2).norm(dim=0) > SIDE * 0.35 + 6.0
    altered = x.clone()
    altered[:, 0][:, far] += 5.0
    with torch.no_grad():
        before, after = net(x, scalars), net(altered, scalars)
    assert all(torch.equal(before[k], after[k]) for k in TASK_KEYS)
    whole = SpatialMultiTaskNet(NetworkConfig(support_mm=0.0)).eval()
    with torch.no_grad():
        assert not torch.equal(whole(x, scalars)["er"], whole(altered, scalars)["er"])

    captured = {}
    layer = net.cam_layer("er")
    layer.register_forward_hook(lambda _m, _i, output: captured.__setitem__("activation", output))
    layer.register_full_backward_hook(lambda _m, _gi, grad: captured.__setitem__("gradient", grad[0]))
    net(x, scalars)["er"].sum().backward()
    evidence = (captured["activation"] * captured["gradient"]).sum(1)[0].abs()
    rois = F.max_pool3d(x[:, 1:].sum(1, keepdim=True), 2)[0, 0] > 0
    cell_grid = torch.stack(
        torch.meshgrid(*[torch.arange(SIDE // 2, dtype=torch.float32)] * 3, indexing="ij")
    )
    roi_cells = cell_grid[:, rois].T  # (n, 3)
    distance_mm = 2.0 * torch.cdist(cell_grid.reshape(3, -1).T, roi_cells).amin(1).reshape(rois.shape)
    assert float(evidence[distance_mm > 4.0].sum()) == 0.0
    assert float(evidence[distance_mm <= 4.0].sum()) > 0.0


def test_a_number_read_on_a_log_scale_is_its_log_with_the_same_weights():
    """log_numbers: the network reads log(texture) where a network without the switch, given the
    log already, reads the same; every other number is read as it is, and zero floors at 1e-3."""
    from BreastSubtypeLib.model.config import LOG_NUMBER_FLOOR, SCALAR_FEATURES

    torch.manual_seed(0)
    logged = SpatialMultiTaskNet(NetworkConfig(log_numbers=["tumour_local_texture"])).eval()
    plain = SpatialMultiTaskNet(NetworkConfig(log_numbers=[])).eval()
    plain.load_state_dict(logged.state_dict())
    assert logged.config.log_numbers == ("tumour_local_texture",)
    x, scalars = make_batch(batch=2)
    column = SCALAR_FEATURES.index("tumour_local_texture")
    scalars[:, column] = torch.tensor([0.08, 0.0])
    given_log = scalars.clone()
    given_log[:, column] = torch.tensor([0.08, LOG_NUMBER_FLOOR]).log()
    with torch.no_grad():
        ours, theirs = logged(x, scalars), plain(x, given_log)
        assert not torch.allclose(plain(x, scalars)["er"], theirs["er"])
    for key in TASK_KEYS:
        torch.testing.assert_close(ours[key], theirs[key])


@pytest.mark.parametrize("ablation", ["full", "no_shared_extractor", "single_task"])
def test_gradient_reaches_the_cam_layer_for_each_task(ablation):
    torch.manual_seed(0)
    net = SpatialMultiTaskNet(ablation_config(ablation)).eval()
    x, scalars = make_batch(batch=1)
    captured = {}
    for task, key in zip(("er", "pr", "her2", "ki67"), TASK_KEYS):
        handle = net.cam_layer(task).register_forward_hook(lambda _m, _i, output: captured.update(a=output))
        out = net(x, scalars)
        handle.remove()
        (gradient,) = torch.autograd.grad(out[key].sum(), captured["a"])
        assert float(gradient.abs().sum()) > 0, task
    assert net.cam_layer_names["er"].endswith(f"extractor.stage{net.config.cam_stage}")


@pytest.mark.parametrize(("global_pool", "reads_far_cells"), [("roi", False), ("crop", True)])
def test_the_global_descriptor_reads_only_the_cells_the_rois_occupy(global_pool, reads_far_cells):
    """Pooled over the ROIs, the global descriptor cannot draw on coarsest-stage cells that hold no
    ROI tissue (over the crop it did, and Grad-CAM lit tissue far from the lesion)."""
    torch.manual_seed(0)
    net = SpatialMultiTaskNet(NetworkConfig(global_pool=global_pool)).eval()
    x, _scalars = make_batch(batch=1, side=64)  # a 4x4x4 coarsest grid whose corners hold no ROI
    branch = net.branches["shared"]
    captured = {}
    handle = branch.extractor.get_submodule(f"stage{len(net.config.widths) - 1}").register_forward_hook(
        lambda _m, _i, output: captured.update(a=output)
    )
    _descriptors, global_features, _maps = branch(x, x[:, 1:])
    handle.remove()
    features = captured["a"]
    empty_cells = F.adaptive_avg_pool3d(x[:, 1:], features.shape[2:]).sum(dim=1) == 0  # (1,d,h,w)
    assert 0 < int(empty_cells.sum()) < empty_cells.numel()
    (gradient,) = torch.autograd.grad(global_features.sum(), features)
    far = gradient.abs().sum(dim=1)[empty_cells]
    assert (float(far.max()) > 0) is reads_far_cells


def test_packages_that_predate_roi_pooling_keep_the_crop_pooling():
    stored = {k: v for k, v in NetworkConfig().to_dict().items() if k != "global_pool"}
    assert NetworkConfig.from_package(stored).global_pool == "crop"
    assert NetworkConfig.from_package({**stored, "global_pool": "roi"}).global_pool == "roi"
    assert NetworkConfig().global_pool == "roi"  # recipe 5


def test_shared_configuration_names_its_cam_layer():
    net = SpatialMultiTaskNet()
    assert net.cam_layer_name == f"branches.shared.extractor.stage{net.config.cam_stage}"
    assert set(net.cam_layer_names.values()) == {net.cam_layer_name}


def test_a_cam_stage_is_accepted_exactly_when_every_output_depends_on_it():
    """Without global features and with attention at stages 1 and 2, the heads read stages 0-2
    (stage 0 through the convolutions): each is a valid Grad-CAM layer with a non-zero gradient for
    every task, and stage 3, which nothing reads, is refused."""
    base = {**NetworkConfig().to_dict(), "global_features": False, "attention_scales": [1, 2]}
    x, scalars = make_batch(batch=1)
    for stage in (0, 1, 2):
        torch.manual_seed(0)
        net = SpatialMultiTaskNet(NetworkConfig.from_dict({**base, "cam_stage": stage})).eval()
        captured: dict[str, torch.Tensor] = {}
        handle = net.cam_layer("er").register_forward_hook(
            lambda _m, _i, out, store=captured: store.update(a=out)
        )
        out = net(x, scalars)
        handle.remove()
        for key in ("er", "pr", "her2", "ki67_percent"):
            (gradient,) = torch.autograd.grad(out[key].sum(), captured["a"], retain_graph=True)
            assert gradient.abs().sum() > 0, (stage, key)
    with pytest.raises(ConfigError, match=r"cam_stage must be a stage index in 0\.\.2"):
        NetworkConfig.from_dict({**base, "cam_stage": 3})


def test_eval_is_deterministic_and_independent_of_the_batch():
    torch.manual_seed(0)
    net = SpatialMultiTaskNet().eval()
    x, scalars = make_batch(batch=2)
    with torch.no_grad():
        first, second, alone = net(x, scalars), net(x, scalars), net(x[:1], scalars[:1])
    for key in (*TASK_KEYS, "roi_weights", "attention_fused"):
        assert torch.equal(first[key], second[key])
        assert torch.allclose(first[key][:1], alone[key], atol=1e-5)


def test_ki67_is_a_percentage():
    net = SpatialMultiTaskNet().eval()
    with torch.no_grad():
        ki67 = net(*make_batch())["ki67_percent"]
    assert float(ki67.min()) >= 0 and float(ki67.max()) <= 100
    assert torch.allclose(ki67, torch.full_like(ki67, 20.0), atol=15.0)  # starts near the cohort median


def test_each_logit_is_its_deep_path_plus_the_linear_read_of_the_scalars():
    net = SpatialMultiTaskNet(NetworkConfig(scalar_skip=True, log_numbers=[])).eval()
    x, scalars = make_batch()
    with torch.no_grad():
        for task in net.tasks:  # the linear path starts at zero; give it weights to see it added
            net.scalar_skip[task].weight.normal_()
        out = net(x, scalars)
        standardised = net.scalar_norm(scalars[:, : net.config.n_scalar_features])  # the numbers it reads
    for task, key in zip(net.tasks, TASK_KEYS):
        logit = out["deep_logits"][task] + net.scalar_skip[task](standardised).squeeze(-1)
        expected = 100.0 * torch.sigmoid(logit) if task == "ki67" else logit
        assert torch.allclose(out[key], expected, atol=1e-5)


def test_cost_at_the_default_input_is_a_few_gflops_and_a_few_million_parameters():
    side = PreprocessingConfig().crop_size_voxels
    net = SpatialMultiTaskNet().eval()
    x, scalars = make_batch(batch=1, side=side[0])
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x, scalars)
    # Default recipe: 32^3 crop, widths 12-96 -> 0.15 GFLOPs and 1.33 M parameters (SPEC §11: <= 30 GFLOPs).
    assert 0.1e9 < counter.get_total_flops() < 0.2e9
    assert 1_000_000 < count_parameters(net) < 2_000_000


def test_no_activation_is_in_place():
    net = SpatialMultiTaskNet(ablation_config("no_shared_extractor"))
    assert not [name for name, m in net.named_modules() if getattr(m, "inplace", False)]


def test_wrong_input_shape_and_missing_scalars_are_refused():
    net = SpatialMultiTaskNet()
    x, scalars = make_batch(batch=1)
    with pytest.raises(ValueError, match="expected input"):
        net(x[:, :3], scalars)
    with pytest.raises(ValueError, match="scalar"):
        net(x)
    with pytest.raises(ValueError, match="multiples of 16"):
        net(x[..., :24], scalars)


def test_configs_round_trip_through_json():
    for config in (ablation_config("core_only"), PreprocessingConfig(crop_size_voxels=(48, 64, 64))):
        again = type(config).from_dict(json.loads(json.dumps(config.to_dict())))
        assert again == config


def test_every_ablation_is_a_distinct_config():
    configs = [ablation_config(name) for name in ABLATIONS]
    assert len(set(configs)) == len(ABLATIONS) == 7
    assert ablation_config("full") == NetworkConfig()


@pytest.mark.parametrize(
    ("cls", "overrides", "message"),
    [
        (NetworkConfig, {"attention": "dual"}, "attention must be one of"),
        (NetworkConfig, {"widths": [16, -32, 64, 128]}, "widths"),
        (NetworkConfig, {"attention_scales": [3, 1]}, "attention_scales"),
        (NetworkConfig, {"tasks": ["er", "luminal"]}, "tasks"),
        (NetworkConfig, {"multi_task": False}, "shared_extractor"),
        (NetworkConfig, {"colour": "red"}, "no setting colour"),
        (NetworkConfig, {"support_mm": -1.0}, "support_mm must be zero or a positive"),
        (NetworkConfig, {"support_mm": 10.0, "n_scalar_features": 1}, "support_mm needs the crop spacing"),
        (NetworkConfig, {"log_numbers": ["tumour_texture"]}, "log_numbers must be distinct names"),
        (NetworkConfig, {"log_numbers": ["core_sd", "core_sd"]}, "log_numbers must be distinct names"),
        (NetworkConfig, {"log_numbers": "core_sd"}, "log_numbers must be distinct names"),
        (PreprocessingConfig, {"crop_size_voxels": [64, 64, 60]}, "multiples of 16"),
        (PreprocessingConfig, {"rim_mm": 0}, "rim_mm"),
        (PreprocessingConfig, {"percentiles": [99, 1]}, "percentiles"),
    ],
)
def test_bad_config_values_are_refused_with_their_name(cls, overrides, message):
    with pytest.raises(ConfigError, match=message):
        cls.from_dict({**cls().to_dict(), **overrides})


def test_unknown_ablation_is_refused():
    with pytest.raises(ConfigError, match="Unknown ablation"):
        ablation_config("no_heads")


@pytest.mark.parametrize(("stride", "kernel"), [(1, 3), (2, 3), (2, 1)])
def test_onednn_convolution_matches_torch_conv3d_with_gradients(stride, kernel):
    from BreastSubtypeLib.model.blocks import Conv3d

    torch.manual_seed(0)
    conv = Conv3d(6, 8, kernel, stride=stride, padding=kernel // 2, bias=True)
    x = torch.randn(1, 6, 16, 16, 16, requires_grad=True)
    ours = conv(x)
    reference = torch.nn.functional.conv3d(x, conv.weight, conv.bias, stride, kernel // 2)
    assert torch.allclose(ours, reference, atol=1e-5)
    ours_grads = torch.autograd.grad(ours.square().sum(), [x, conv.weight, conv.bias])
    reference_grads = torch.autograd.grad(reference.square().sum(), [x, conv.weight, conv.bias])
    for a, b in zip(ours_grads, reference_grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)
    with FlopCounterMode(display=False) as counter:
        conv(x)
    assert counter.get_total_flops() == 2 * ours.numel() * 6 * kernel**3
