"""The margin profile: millimetre shells on the acquired voxels, exact on a planar boundary."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from BreastSubtypeLib.model.config import SCALAR_FEATURES, SIZE_FEATURES, NetworkConfig, ablation_config
from BreastSubtypeLib.model.network import SpatialMultiTaskNet
from BreastSubtypeLib.preprocessing.margin_profile import (
    MARGIN_PROFILE_FEATURES,
    MARGIN_PROFILE_REGION,
    margin_profile,
    margin_shape,
)
from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM


def planar_case(spacing_x_mm: float = 1.0):
    """Tumour for x < 10 (core x < 7, rim 7-9), peritumoral band x = 10-15; intensity = 100 x."""
    labels = np.zeros((4, 4, 20), np.uint8)
    labels[..., :7] = CORE
    labels[..., 7:10] = RIM
    labels[..., 10:16] = PERITUMORAL
    image = np.broadcast_to(100.0 * np.arange(20), labels.shape).astype(np.int16)
    return image, labels, (1.0, 1.0, spacing_x_mm)


def profile_of(image, labels, spacing):
    values = margin_profile(image, labels, spacing, lambda v: v / 100.0)
    return dict(zip(MARGIN_PROFILE_FEATURES, values.tolist()))


def test_shells_are_millimetres_from_the_tumour_boundary():
    profile = profile_of(*planar_case())
    # Rim voxels x = 9, 8, 7 lie 0.5, 1.5, 2.5 mm deep; band voxels x = 10..15 lie 0.5..5.5 mm out.
    assert [profile[f"rim_{a}_{a + 1}mm_mean"] for a in (0, 1, 2)] == pytest.approx([9, 8, 7])
    assert [profile[f"peritumoral_{a}_{a + 1}mm_mean"] for a in (0, 1, 2, 3)] == pytest.approx(
        [10, 11, 12, 13]
    )
    assert profile["peritumoral_4_6mm_mean"] == pytest.approx(14.5)
    core = np.repeat(np.arange(7.0), 16)  # each x holds 4 x 4 voxels
    assert profile["core_mean"] == pytest.approx(core.mean())
    assert profile["core_sd"] == pytest.approx(core.std())
    assert profile["core_p10"] == pytest.approx(np.percentile(core, 10))
    assert profile["core_p90"] == pytest.approx(np.percentile(core, 90))


def test_anisotropic_voxels_fall_into_the_shells_their_millimetres_say():
    # 2 mm voxels across the boundary: band voxels x = 10, 11, 12 lie 1, 3 and 5 mm out.
    profile = profile_of(*planar_case(spacing_x_mm=2.0))
    assert profile["peritumoral_1_2mm_mean"] == pytest.approx(10)
    assert profile["peritumoral_3_4mm_mean"] == pytest.approx(11)
    assert profile["peritumoral_4_6mm_mean"] == pytest.approx(12)
    # The empty 0-1 mm shell takes its nearest neighbour (1-2 mm); 2-3 mm ties and takes the inner one.
    assert profile["peritumoral_0_1mm_mean"] == pytest.approx(10)
    assert profile["peritumoral_2_3mm_mean"] == pytest.approx(10)


def test_an_absent_region_gives_zeros_not_nan():
    image, labels, spacing = planar_case()
    labels[labels == PERITUMORAL] = 0
    profile = profile_of(image, labels, spacing)
    assert all(profile[name] == 0.0 for name in MARGIN_PROFILE_FEATURES if name.startswith("peritumoral"))
    assert np.isfinite(list(profile.values())).all()


def test_scalar_features_are_the_size_then_the_profile_tagged_by_region():
    assert SCALAR_FEATURES == (*SIZE_FEATURES, *MARGIN_PROFILE_FEATURES)
    regions = dict(zip(MARGIN_PROFILE_FEATURES, MARGIN_PROFILE_REGION))
    assert {regions[n] for n in MARGIN_PROFILE_FEATURES if n.startswith("rim")} == {1}
    assert {regions[n] for n in MARGIN_PROFILE_FEATURES if n.startswith("core")} == {0}
    assert {regions[n] for n in MARGIN_PROFILE_FEATURES if n.startswith("peritumoral")} == {2}


@pytest.mark.parametrize("ablation", ["no_peritumoral", "core_only"])
def test_a_network_blind_to_a_region_is_blind_to_its_profile_numbers(ablation):
    torch.manual_seed(0)
    network = SpatialMultiTaskNet(ablation_config(ablation)).eval()
    image = torch.rand(2, 4, 32, 32, 32)
    scalars = torch.rand(1, len(SCALAR_FEATURES)).repeat(2, 1)
    hidden = [
        len(SIZE_FEATURES) + i
        for i, region in enumerate(MARGIN_PROFILE_REGION)
        if not network.config.visible_regions[region]
    ]
    scalars[1, hidden] += 5.0
    with torch.no_grad():
        out = network(image[:1].repeat(2, 1, 1, 1, 1), scalars)
    for key in ("er", "pr", "her2", "ki67_percent"):
        assert float(out[key][0]) == pytest.approx(float(out[key][1]), abs=1e-5)
    seeing = SpatialMultiTaskNet(NetworkConfig()).eval()
    with torch.no_grad():
        out = seeing(image[:1].repeat(2, 1, 1, 1, 1), scalars)
    assert abs(float(out["her2"][0] - out["her2"][1])) > 1e-4  # ten times the blind network's tolerance


def test_older_packages_use_only_the_size_scalars():
    legacy = NetworkConfig.from_package(
        {k: v for k, v in NetworkConfig().to_dict().items() if k not in ("n_scalar_features", "scalar_norm")}
    )
    assert legacy.n_scalar_features == len(SIZE_FEATURES) and not legacy.scalar_norm
    network = SpatialMultiTaskNet(legacy).eval()
    scalars = torch.rand(1, len(SCALAR_FEATURES)).repeat(2, 1)
    scalars[1, len(SIZE_FEATURES) :] += 5.0  # a different margin profile, the same size
    with torch.no_grad():
        out = network(torch.rand(1, 4, 32, 32, 32).repeat(2, 1, 1, 1, 1), scalars)
    assert float(out["her2"][0]) == pytest.approx(float(out["her2"][1]), abs=1e-5)


def test_margin_shape_is_dimensionless_and_exact_on_boxes():
    cube = np.zeros((16, 16, 16), bool)
    cube[3:13, 3:13, 3:13] = True
    radius_cv, max_to_mean, surface_to_volume = margin_shape(cube, (1.0, 1.0, 1.0))
    assert surface_to_volume == pytest.approx(6.0)  # 600 mm^2 / (1000 mm^3)^(2/3)
    assert margin_shape(cube, (0.5, 0.5, 0.5)) == pytest.approx([radius_cv, max_to_mean, surface_to_volume])
    # 20 x 10 x 10 mm box: 1000 mm^2 over (2000 mm^3)^(2/3)
    assert margin_shape(cube, (2.0, 1.0, 1.0))[2] == pytest.approx(1000 / 2000 ** (2 / 3))


def test_a_spiculated_margin_scores_higher_than_a_smooth_one():
    grid = np.indices((40, 40, 40)).transpose(1, 2, 3, 0) * 0.7
    radius = np.linalg.norm(grid - 14.0, axis=-1)
    ball = radius < 8.0
    spiculated = ball.copy()
    for axis in range(3):  # six 5 mm spicules along the axes
        line = np.abs(np.delete(grid - 14.0, axis, axis=-1)).max(axis=-1) < 0.8
        spiculated |= line & (radius < 13.0)
    smooth, spiky = margin_shape(ball, (0.7,) * 3), margin_shape(spiculated, (0.7,) * 3)
    assert smooth[0] < 0.05 and all(b > a for a, b in zip(smooth, spiky))


def test_margin_evidence_is_the_gradient_times_the_centred_value_with_the_calls_sign():
    from contextlib import nullcontext

    from BreastSubtypeLib.inference.explain import forward_with_explanations

    torch.manual_seed(3)
    network = SpatialMultiTaskNet(NetworkConfig()).train()
    with torch.no_grad():  # the linear read starts at zero; a trained one carries most of the evidence,
        for layer in network.scalar_skip.values():  # and float32 differences of a tiny one are noise
            layer.weight.normal_(0.0, 0.5)
    read = network.config.n_scalar_features
    network(torch.rand(4, 4, 32, 32, 32), torch.rand(4, read))  # running statistics
    network.eval()
    image = torch.rand(1, 4, 32, 32, 32)
    image[:, 1:] = (image[:, 1:] > 0.7).float()
    scalars = torch.rand(1, read)
    outputs, _maps = forward_with_explanations(
        network, image, scalars, tasks=network.tasks, explain=True, autocast=nullcontext()
    )
    step = 1e-3
    # The first rim shell, read as it is, and the texture, read on a log scale (recipes 9 and 10):
    # there the evidence is x d/dx (the slope per unit of log x) times (log x - the mean of logs).
    texture = SCALAR_FEATURES.index("tumour_local_texture")
    assert "tumour_local_texture" in network.config.log_numbers
    for column, logged in ((len(SIZE_FEATURES), False), (texture, True)):
        value = float(scalars[0, column])
        # Central differences in the scale the network reads: value +- step, or value x e^(+-step).
        up, down = scalars.clone(), scalars.clone()
        up[0, column] = value * np.exp(step) if logged else value + step
        down[0, column] = value * np.exp(-step) if logged else value - step
        with torch.no_grad():
            before, after, below = network(image, scalars), network(image, up), network(image, down)
        mean = float(network.scalar_norm.mean[column])
        centred = np.log(value) - mean if logged else value - mean
        for task, key in (("er", "er"), ("her2", "her2")):
            sign = 1.0 if torch.sigmoid(before[key]) >= 0.5 else -1.0
            slope = sign * float(after[key] - below[key]) / (2 * step)
            expected = slope * centred
            evidence = float(outputs[f"margin_evidence_{task}"][0, column - len(SIZE_FEATURES)])
            assert evidence == pytest.approx(expected, rel=2e-2, abs=1e-6), (column, task)
    used = network.config.n_scalar_features - len(SIZE_FEATURES)  # the profile numbers it uses
    assert outputs["margin_evidence_ki67"].shape == (1, used)


def test_the_report_draws_the_profile_outwards_from_the_rim():
    from BreastSubtypeLib.reports.margin_section import margin_section, profile_points

    values = {name: float(i) for i, name in enumerate(MARGIN_PROFILE_FEATURES)}
    assert [x for x, _ in profile_points(values)] == [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 5.0]
    html = "".join(margin_section({"values": values, "evidence": {"her2": {"peritumoral_0_1mm_mean": 1.25}}}))
    assert "<svg" in html and "HER2" in html
    assert "Peritumoral 0-1 mm outside the margin: mean signal intensity +1.25" in html
    assert margin_section({}) == []


def test_contrasts_are_ratios_of_raw_differences_and_ignore_the_intensity_unit():
    _image, labels, spacing = planar_case()
    image = np.broadcast_to(100.0 * (20 - np.arange(20)), labels.shape).astype(np.float32)
    profile = profile_of(image, labels, spacing)
    # Raw intensities 100 (20 - x): rim 0-1 mm (x = 9) 1100, band 0-1 / 1-2 / 4-6 mm 1000 / 900 /
    # 550, core mean 1700: enhancement above the 4-6 mm shell as a fraction of the rim's.
    assert profile["peritumoral_0_1mm_contrast"] == pytest.approx(450 / 550)
    assert profile["peritumoral_1_2mm_contrast"] == pytest.approx(350 / 550)
    assert profile["rim_core_ratio"] == pytest.approx(1150 / 550)
    # A rim no brighter than the surrounding tissue has no enhancement to compare with: 0, not a
    # sign-flipped or huge ratio.
    assert profile_of(*planar_case())["peritumoral_0_1mm_contrast"] == 0.0
    rescaled = profile_of((image.astype(np.float32) * 7.5), labels, spacing)
    for name in (
        "peritumoral_0_1mm_contrast",
        "rim_core_ratio",
        "tumour_local_texture",
        "peritumoral_entropy",
    ):
        assert rescaled[name] == pytest.approx(profile[name], rel=1e-5)


def test_the_band_entropy_counts_how_widely_the_band_spreads_between_rim_and_background():
    """Band voxels x = 10..15 hold 1000 ... 500 (16 voxels each) against a rim of 1100 and a 4-6 mm
    background of 550: fractions 0.82, 0.64, 0.45, 0.27, 0.09, -0.09 of the rim's contrast fall in
    six different 0.05-wide bins, so the entropy is exactly ln 6; a storage offset or another unit
    changes nothing, a flat band has entropy 0, and a rim no brighter than its surroundings gives 0."""
    _image, labels, spacing = planar_case()
    image = np.broadcast_to(100.0 * (20 - np.arange(20)), labels.shape).astype(np.float32)
    assert profile_of(image, labels, spacing)["peritumoral_entropy"] == pytest.approx(np.log(6))
    assert profile_of(image * 3.0 + 400.0, labels, spacing)["peritumoral_entropy"] == pytest.approx(np.log(6))
    flat = image.copy()
    flat[..., 10:16] = 550.0
    assert profile_of(flat, labels, spacing)["peritumoral_entropy"] == 0.0
    assert profile_of(*planar_case())["peritumoral_entropy"] == 0.0


def test_local_texture_is_zero_on_a_smooth_tumour_and_grows_with_speckle():
    labels = np.zeros((12, 24, 24), np.uint8)
    labels[2:10, 4:20, 4:20] = RIM
    labels[4:8, 8:16, 8:16] = CORE
    smooth = np.full(labels.shape, 1000.0, np.float32)
    speckle = smooth * (1 + 0.2 * np.random.default_rng(0).standard_normal(labels.shape)).astype(np.float32)
    texture = [
        profile_of(image, labels, (2.0, 1.0, 1.0))["tumour_local_texture"] for image in (smooth, speckle)
    ]
    assert texture[0] == pytest.approx(0.0, abs=1e-6)
    assert 0.1 < texture[1] < 0.2  # MAD of ~N(0, 0.2) is 0.135


def test_the_linear_scalar_path_starts_neutral_and_the_default_reads_the_recipes_numbers():
    torch.manual_seed(0)
    wide = SpatialMultiTaskNet(NetworkConfig(n_scalar_features=len(SCALAR_FEATURES), scalar_skip=True)).eval()
    image = torch.rand(2, 4, 32, 32, 32)
    scalars = torch.rand(2, len(SCALAR_FEATURES))
    with torch.no_grad():
        out = wide(image, scalars)
        skip = {task: wide.scalar_skip[task](wide.scalar_norm(scalars)) for task in wide.tasks}
    assert all(torch.equal(value, torch.zeros_like(value)) for value in skip.values())  # zero at start
    assert torch.isfinite(out["her2"]).all()
    # Recipes 10 and 11 read the three after the contrasts too, recipe 12 the band's amplitude, recipe
    # 13 the tumour's signal over its rim's; the band's homogeneity and roughness, candidates, only
    # when a config asks for them.
    assert NetworkConfig().n_scalar_features == len(SCALAR_FEATURES) - 2 == 26
    assert SCALAR_FEATURES[-7:] == (
        "tumour_profile_texture",
        "peritumoral_near_drop",
        "peritumoral_entropy",
        "peritumoral_amplitude",
        "tumour_to_rim_signal",
        "peritumoral_homogeneity",
        "peritumoral_roughness",
    )
    with pytest.raises(Exception, match="n_scalar_features"):
        NetworkConfig(n_scalar_features=len(SCALAR_FEATURES) + 1)


def test_profile_texture_ignores_the_rim_to_core_profile_that_the_local_texture_sees():
    """A tumour whose signal depends on depth alone (a bright rim fading into a darker core, in
    0.5 mm depth steps) has no texture around its profile, though a 3 mm local mean cannot follow
    the rim; multiplicative speckle of SD 0.2 reads as its MAD (~0.135) either way."""
    from BreastSubtypeLib.rois.distance import surface_distances_mm

    labels = np.zeros((12, 24, 24), np.uint8)
    labels[2:10, 4:20, 4:20] = RIM
    labels[4:8, 8:16, 8:16] = CORE
    spacing = (2.0, 1.0, 1.0)
    depth_mm, _outside = surface_distances_mm(labels > 0, spacing)
    profiled = (1000.0 + 800.0 * np.exp(-np.floor(depth_mm / 0.5) * 0.5 / 1.5)).astype(np.float32)
    profile = profile_of(profiled, labels, spacing)
    assert profile["tumour_profile_texture"] == pytest.approx(0.0, abs=1e-6)
    assert profile["tumour_local_texture"] > 0.05
    speckle = profiled * (1 + 0.2 * np.random.default_rng(0).standard_normal(labels.shape)).astype(np.float32)
    assert 0.1 < profile_of(speckle, labels, spacing)["tumour_profile_texture"] < 0.2


def test_near_drop_compares_each_direction_with_the_tissue_beside_it():
    """Planar case, intensities 100 (20 - x): in each of the four direction sectors the band falls
    from 1000 (x = 10, 0.5 mm out) to 800 (x = 12, 2.5 mm out), against a rim-over-background
    contrast of 1100 - 550; a vessel lighting the near band in one sector moves the mean contrast
    but not the median drop; a band with no 0-1 mm voxels (2 mm voxels) gives 0."""
    _image, labels, spacing = planar_case()
    image = np.broadcast_to(100.0 * (20 - np.arange(20)), labels.shape).astype(np.float32)
    profile = profile_of(image, labels, spacing)
    assert profile["peritumoral_near_drop"] == pytest.approx(200 / 550)
    vessel = image.copy()
    vessel[:2, :2, 10] += 5000.0  # the near shell of one sector
    with_vessel = profile_of(vessel, labels, spacing)
    assert with_vessel["peritumoral_near_drop"] == pytest.approx(200 / 550)
    assert with_vessel["peritumoral_0_1mm_contrast"] != pytest.approx(profile["peritumoral_0_1mm_contrast"])
    assert profile_of(image * 3.0 + 400.0, labels, spacing)["peritumoral_near_drop"] == pytest.approx(
        200 / 550
    )
    assert profile_of(image, labels, (1.0, 1.0, 2.0))["peritumoral_near_drop"] == 0.0


def test_band_roughness_is_the_median_neighbour_difference_over_the_rims_contrast():
    """Planar case with a rim of 1100 and a band that alternates 500 and 600 voxel by voxel: every
    pair of face neighbours in the band differs by 100, the 4-6 mm background is 550, so the
    roughness is 100 / 550 whatever the unit, offset or storage order; a smooth band gives 0."""
    _image, labels, spacing = planar_case()
    k, j, i = np.indices(labels.shape)
    image = np.where(labels == RIM, 1100.0, 1000.0)
    image = np.where(labels == PERITUMORAL, 500.0 + 100.0 * ((i + j + k) % 2), image).astype(np.float32)
    assert profile_of(image, labels, spacing)["peritumoral_roughness"] == pytest.approx(100 / 550)
    assert profile_of(image * 3.0 + 400.0, labels, spacing)["peritumoral_roughness"] == pytest.approx(
        100 / 550
    )
    flipped = profile_of(image[::-1, :, ::-1], labels[::-1, :, ::-1], spacing)
    assert flipped["peritumoral_roughness"] == pytest.approx(100 / 550)
    assert profile_of(image.transpose(1, 0, 2), labels.transpose(1, 0, 2), spacing)[
        "peritumoral_roughness"
    ] == pytest.approx(100 / 550)
    smooth = np.where(labels == PERITUMORAL, 550.0, image).astype(np.float32)
    assert profile_of(smooth, labels, spacing)["peritumoral_roughness"] == 0.0
    # Without a band there is no pair: 0, not NaN.
    no_band = np.where(labels == PERITUMORAL, 0, labels).astype(np.uint8)
    assert profile_of(image, no_band, spacing)["peritumoral_roughness"] == 0.0


def test_band_homogeneity_weighs_each_neighbour_difference_on_the_whole_image_scale():
    """Planar case whose band alternates 500 and 503 voxel by voxel (the test's normalisation is
    intensity / 100, so every face-neighbour pair differs by 0.03 normalised units): homogeneity
    1 / (1 + (0.03 / 0.02)²) = 1 / 3.25, whatever the storage order; a smooth band gives 1 and a
    missing band 0, as every number of an absent region."""
    _image, labels, spacing = planar_case()
    k, j, i = np.indices(labels.shape)
    image = np.where(labels == RIM, 1100.0, 1000.0)
    image = np.where(labels == PERITUMORAL, 500.0 + 3.0 * ((i + j + k) % 2), image).astype(np.float32)
    assert profile_of(image, labels, spacing)["peritumoral_homogeneity"] == pytest.approx(1 / 3.25, rel=1e-5)
    flipped = profile_of(image[::-1, :, ::-1], labels[::-1, :, ::-1], spacing)
    assert flipped["peritumoral_homogeneity"] == pytest.approx(1 / 3.25, rel=1e-5)
    permuted = profile_of(image.transpose(1, 0, 2), labels.transpose(1, 0, 2), spacing)
    assert permuted["peritumoral_homogeneity"] == pytest.approx(1 / 3.25, rel=1e-5)
    smooth = np.where(labels == PERITUMORAL, 550.0, image).astype(np.float32)
    assert profile_of(smooth, labels, spacing)["peritumoral_homogeneity"] == 1.0
    no_band = np.where(labels == PERITUMORAL, 0, labels).astype(np.uint8)
    assert profile_of(image, no_band, spacing)["peritumoral_homogeneity"] == 0.0


def test_band_amplitude_is_the_fitted_decay_over_the_tumours_own_signal():
    """Planar case: core 1000, rim 1100 (the tumour's 90th percentile), band voxels 0.5-5.5 mm out
    at 550 + 330 exp(-d / 2 mm): the amplitude is exactly 330 / 1100 = 0.3, whatever the unit or
    storage order; fat or gland beneath the band (a different 550) changes nothing, a vessel in two
    near-band voxels next to nothing (the reweighted fit), and a band with no decay to fit gives 0."""
    _image, labels, spacing = planar_case()
    k, j, i = np.indices(labels.shape)
    outside_mm = i - 9.5
    image = np.where(labels == RIM, 1100.0, 1000.0)
    band = 550.0 + 330.0 * np.exp(-outside_mm / 2.0)
    image = np.where(labels == PERITUMORAL, band, image).astype(np.float32)
    assert profile_of(image, labels, spacing)["peritumoral_amplitude"] == pytest.approx(0.3, rel=1e-5)
    assert profile_of(image * 3.0, labels, spacing)["peritumoral_amplitude"] == pytest.approx(0.3, rel=1e-5)
    on_gland = np.where(labels == PERITUMORAL, image + 400.0, image).astype(np.float32)
    assert profile_of(on_gland, labels, spacing)["peritumoral_amplitude"] == pytest.approx(0.3, rel=1e-5)
    flipped = profile_of(image[::-1, :, ::-1], labels[::-1, :, ::-1], spacing)
    assert flipped["peritumoral_amplitude"] == pytest.approx(0.3, rel=1e-5)
    permuted = profile_of(image.transpose(1, 0, 2), labels.transpose(1, 0, 2), spacing)
    assert permuted["peritumoral_amplitude"] == pytest.approx(0.3, rel=1e-5)
    vessel = image.copy()
    vessel[:2, 0, 10] += 5000.0
    with_vessel = profile_of(vessel, labels, spacing)
    assert with_vessel["peritumoral_amplitude"] == pytest.approx(0.3, rel=0.02)
    assert (
        with_vessel["peritumoral_0_1mm_contrast"]
        > 1.3 * profile_of(image, labels, spacing)["peritumoral_0_1mm_contrast"]
    )
    one_distance = np.where((labels == PERITUMORAL) & (i > 10), 0, labels).astype(np.uint8)
    assert profile_of(image, one_distance, spacing)["peritumoral_amplitude"] == 0.0
    no_band = np.where(labels == PERITUMORAL, 0, labels).astype(np.uint8)
    assert profile_of(image, no_band, spacing)["peritumoral_amplitude"] == 0.0


def test_tumour_to_rim_signal_is_the_tumours_mean_over_its_outer_millimetre_with_no_background_off():
    """Planar case: 112 core voxels at 1000 and 48 rim voxels at 1100, the 0-1 mm rim shell (x = 9)
    at 1100: the ratio is exactly 1030 / 1100, whatever the unit, the tissue around the tumour (the
    core-to-rim ratio moves with it) or the storage order; no tumour gives 0."""
    _image, labels, spacing = planar_case()
    k, j, i = np.indices(labels.shape)
    image = np.where(labels == RIM, 1100.0, 1000.0)
    image = np.where(labels == PERITUMORAL, 500.0, image).astype(np.float32)
    expected = 1030.0 / 1100.0
    assert profile_of(image, labels, spacing)["tumour_to_rim_signal"] == pytest.approx(expected, rel=1e-6)
    assert profile_of(image * 3.0, labels, spacing)["tumour_to_rim_signal"] == pytest.approx(
        expected, rel=1e-6
    )
    brighter_tissue = np.where(labels == PERITUMORAL, 900.0, image).astype(np.float32)
    assert profile_of(brighter_tissue, labels, spacing)["tumour_to_rim_signal"] == pytest.approx(
        expected, rel=1e-6
    )
    assert profile_of(brighter_tissue, labels, spacing)["rim_core_ratio"] != pytest.approx(
        profile_of(image, labels, spacing)["rim_core_ratio"]
    )
    flipped = profile_of(image[::-1, :, ::-1], labels[::-1, :, ::-1], spacing)
    assert flipped["tumour_to_rim_signal"] == pytest.approx(expected, rel=1e-6)
    permuted = profile_of(image.transpose(1, 0, 2), labels.transpose(1, 0, 2), spacing)
    assert permuted["tumour_to_rim_signal"] == pytest.approx(expected, rel=1e-6)
    no_tumour = np.where(labels == PERITUMORAL, labels, 0).astype(np.uint8)
    assert profile_of(image, no_tumour, spacing)["tumour_to_rim_signal"] == 0.0
