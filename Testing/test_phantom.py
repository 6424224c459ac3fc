"""Synthetic phantoms: determinism, geometry, lesion truth, biomarker prevalences, where each
biomarker's signal lives, the cohort writer, its variations and the ``phantom`` command."""

import csv
import hashlib
import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from BreastSubtypeLib.cli.main import main
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.manifest import read_manifest
from BreastSubtypeLib.phantom import LATENT_FEATURES, generate_phantom, write_phantom_cohort
from BreastSubtypeLib.phantom.biomarkers import (
    check_prevalence,
    label_model,
    sample_biomarkers,
    sample_latents,
    sample_latents_given,
)
from BreastSubtypeLib.phantom.cohort import (
    PROFILES,
    case_geometry,
    missing_labels,
    represent_intensity,
    resolve_variation,
)
from BreastSubtypeLib.phantom.lesion import diameter_from_latent

SMALL = {"size_ijk": (64, 64, 32), "spacing_mm": (1.0, 1.0, 2.0)}
FLIP_XY = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
_c, _s = math.cos(math.radians(30)), math.sin(math.radians(30))
OBLIQUE = (_c, -_s, 0.0, _s, _c, 0.0, 0.0, 0.0, 1.0)
AVERAGE_LESION = dict.fromkeys(LATENT_FEATURES, 0.0)


def _array(image):
    return sitk.GetArrayFromImage(image)


def test_same_seed_gives_identical_arrays_and_another_seed_does_not():
    first, again, other = (generate_phantom(seed, **SMALL) for seed in (5, 5, 6))
    assert np.array_equal(_array(first.image), _array(again.image))
    assert np.array_equal(_array(first.tumour_mask), _array(again.tumour_mask))
    assert first.biomarkers == again.biomarkers and first.true_probabilities == again.true_probabilities
    assert not np.array_equal(_array(first.image), _array(other.image))


@pytest.mark.parametrize("direction", [None, FLIP_XY, OBLIQUE])
def test_geometry_is_exactly_as_asked(direction):
    origin = (12.5, -40.0, 7.25)
    case = generate_phantom(
        2, size_ijk=(64, 60, 30), spacing_mm=(0.9, 0.8, 2.1), direction=direction, origin=origin
    )
    expected_direction = direction or (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    for image in (case.image, case.tumour_mask, case.lesion_labels):
        assert image.GetSize() == (64, 60, 30)
        assert image.GetSpacing() == pytest.approx((0.9, 0.8, 2.1), abs=1e-12)
        assert image.GetOrigin() == pytest.approx(origin, abs=1e-12)
        assert image.GetDirection() == pytest.approx(expected_direction, abs=1e-12)
    assert case.image.GetPixelID() == sitk.sitkInt16
    assert case.tumour_mask.GetPixelID() == sitk.sitkUInt8


def test_default_origin_centres_the_volume_on_zero():
    case = generate_phantom(2, direction=FLIP_XY, **SMALL)
    centre_index = [(n - 1) / 2 for n in case.image.GetSize()]
    assert case.image.TransformContinuousIndexToPhysicalPoint(centre_index) == pytest.approx(
        (0, 0, 0), abs=1e-9
    )


def test_intensities_are_12_bit_and_the_tumour_enhances():
    case = generate_phantom(8, **SMALL)
    image, mask = _array(case.image), _array(case.tumour_mask) > 0
    assert image.dtype == np.int16 and image.min() >= 0 and image.max() <= 4095
    assert np.median(image[mask]) > 2.0 * np.median(image[~mask])


@pytest.mark.parametrize("direction", [None, FLIP_XY, OBLIQUE])
def test_lesion_centre_lies_in_the_mask_and_at_its_centroid(direction):
    case = generate_phantom(4, direction=direction, lesion_diameter_mm=16.0, **SMALL)
    index = case.tumour_mask.TransformPhysicalPointToIndex(case.lesion_center_lps)
    assert case.tumour_mask[index] == 1
    mask = _array(case.lesion_labels) == 1
    centroid_kji = ndimage.center_of_mass(mask)
    centroid = case.image.TransformContinuousIndexToPhysicalPoint([float(v) for v in centroid_kji[::-1]])
    assert np.linalg.norm(np.subtract(centroid, case.lesion_center_lps)) < 2.0
    x, y, z = case.lesion_center_lps
    assert case.lesion_center_ras == (-x, -y, z)


def test_smooth_lesion_volume_matches_its_diameter():
    features = {**AVERAGE_LESION, "margin_spiculation": -3.0}  # round, smooth margin
    case = generate_phantom(4, lesion_diameter_mm=18.0, imaging_features=features, **SMALL)
    volume_mm3 = (_array(case.tumour_mask) > 0).sum() * np.prod(case.image.GetSpacing())
    equivalent_diameter_mm = (6 * volume_mm3 / math.pi) ** (1 / 3)
    assert case.lesion_diameter_mm == 18.0
    assert equivalent_diameter_mm == pytest.approx(18.0, rel=0.08)


def test_two_lesions_are_numbered_index_first_and_both_in_the_mask():
    case = generate_phantom(3, n_lesions=2, size_ijk=(128, 128, 48), spacing_mm=(0.7, 0.7, 1.5))
    labels, mask = _array(case.lesion_labels), _array(case.tumour_mask)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert np.array_equal(mask, (labels > 0).astype(np.uint8))
    assert (labels == 1).sum() > (labels == 2).sum()
    assert ndimage.label(mask)[1] == 2


def test_prevalences_of_300_cases_are_realistic():
    _, labels = sample_biomarkers(np.random.default_rng(2026), 300)
    er, pr, her2, ki67 = labels["er"], labels["pr"], labels["her2"], labels["ki67_percent"]
    assert 0.62 <= er.mean() <= 0.78
    assert 0.52 <= pr.mean() <= 0.68
    assert 0.14 <= her2.mean() <= 0.26
    assert pr[er == 0].mean() < 0.15  # PR+ lies mostly within ER+
    assert (
        10.0 <= np.median(ki67) <= 25.0 and np.percentile(ki67, 5) >= 3.0 and np.percentile(ki67, 95) <= 65.0
    )
    assert np.mean(ki67) > np.median(ki67)  # right-skewed


def test_label_models_are_calibrated_to_the_target_prevalences():
    z, labels = sample_biomarkers(np.random.default_rng(1), 200_000)
    model = label_model(z)
    for task, target in (("er", 0.70), ("pr", 0.60), ("her2", 0.20)):
        assert model[task].mean() == pytest.approx(target, abs=0.005)
        assert labels[task].mean() == pytest.approx(target, abs=0.005)


def test_given_biomarkers_are_kept_and_imaging_follows_them():
    case = generate_phantom(9, biomarkers={"er": 0, "pr": 0, "her2": 1, "ki67_percent": 45.0}, **SMALL)
    assert (case.biomarkers.er, case.biomarkers.pr, case.biomarkers.her2) == (0, 0, 1)
    assert case.biomarkers.ki67_percent == 45.0 and case.biomarkers.pr_percent == 0.0
    rng = np.random.default_rng(0)
    p_her2 = {
        status: np.mean(
            [label_model(sample_latents_given(rng, {"her2": status}))["her2"] for _ in range(200)]
        )
        for status in (0, 1)
    }
    assert p_her2[1] > 0.5 > 0.15 > p_her2[0]


def _pair(feature, low, high, seed=12):
    cases = [
        generate_phantom(
            seed, lesion_diameter_mm=16.0, imaging_features={**AVERAGE_LESION, feature: v}, **SMALL
        )
        for v in (low, high)
    ]
    mask = _array(cases[0].tumour_mask) > 0
    assert np.array_equal(mask, _array(cases[1].tumour_mask) > 0)
    outside_mm = ndimage.distance_transform_edt(~mask, sampling=SMALL["spacing_mm"][::-1])
    return [_array(c.image).astype(float) for c in cases], mask, outside_mm


def test_peritumoral_oedema_changes_only_the_band_outside_the_tumour():
    (low, high), mask, outside_mm = _pair("peritumoral_oedema", -2.0, 2.0)
    assert np.array_equal(low[mask], high[mask])  # nothing inside the tumour depends on it
    far = outside_mm > 7.0
    assert np.array_equal(low[far], high[far])
    band = (outside_mm > 0) & (outside_mm <= 3.0) & (low > 100)  # on tissue
    assert high[band].mean() - low[band].mean() > 250.0


def test_rim_enhancement_changes_only_the_tumour_darkening_its_core():
    (low, high), mask, _ = _pair("rim_enhancement", -2.0, 2.0)
    assert np.array_equal(low[~mask], high[~mask])
    depth_mm = ndimage.distance_transform_edt(mask, sampling=SMALL["spacing_mm"][::-1])
    core, rim = depth_mm > 4.0, mask & (depth_mm <= 2.0)
    assert high[core].mean() < 0.75 * low[core].mean()
    assert high[rim].mean() / high[core].mean() > 1.3 * low[rim].mean() / low[core].mean()


def test_her2_signal_is_in_the_band_and_er_signal_in_the_core_across_cases():
    band_excess, core_to_rim, p_her2, p_er = [], [], [], []
    sampling = SMALL["spacing_mm"][::-1]
    for seed in range(30):
        case = generate_phantom(seed, **SMALL)
        image, mask = _array(case.image).astype(float), _array(case.lesion_labels) == 1
        outside = ndimage.distance_transform_edt(~mask, sampling=sampling)
        depth = ndimage.distance_transform_edt(mask, sampling=sampling)
        band = (outside > 0) & (outside <= 2.5) & (image > 100)  # on tissue
        surroundings = (outside > 7) & (outside <= 10) & (image > 100)
        rim = image[mask & (depth <= 2.0)].mean()
        band_excess.append((image[band].mean() - image[surroundings].mean()) / rim)
        core_to_rim.append(image[depth >= depth.max() / 2].mean() / rim)
        p_her2.append(case.true_probabilities["her2"])
        p_er.append(case.true_probabilities["er"])

    def spearman(a, b):
        return np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]

    assert spearman(band_excess, p_her2) > 0.7
    assert abs(spearman(core_to_rim, p_her2)) < 0.4
    assert spearman(core_to_rim, p_er) > 0.4  # the core does carry the ER / triple-negative signal


@pytest.mark.parametrize(
    "arguments",
    [
        {"size_ijk": (10, 64, 32)},
        {"spacing_mm": (0.0, 1.0, 1.0)},
        {"direction": (1, 0, 0, 0, 2, 0, 0, 0, 1)},
        {"n_lesions": 3},
        {"lesion_diameter_mm": 100.0},
        {"lesion_diameter_mm": 40.0, "size_ijk": (48, 48, 24)},  # cannot fit
        {"biomarkers": {"esr1": 1}},
        {"biomarkers": {"her2": 2}},
        {"imaging_features": {"spiculation": 1.0}},
    ],
)
def test_bad_arguments_raise_one_clear_error(arguments):
    with pytest.raises(BadInputError) as error:
        generate_phantom(1, **{**SMALL, **arguments})
    assert "\n" not in str(error.value)


def test_cohort_writes_manifest_truth_and_loadable_images(tmp_path):
    manifest = write_phantom_cohort(tmp_path / "cohort", 3, seed=7, **SMALL)
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["case_id", "image", "mask", "er", "pr", "her2", "ki67", "split", "patient_id"]
    assert [row["image"] for row in rows] == [f"images/phantom_{i:04d}.nii.gz" for i in range(3)]
    assert all(row["split"] == "" for row in rows)
    for row in read_manifest(manifest):
        image, mask = sitk.ReadImage(str(row.image)), sitk.ReadImage(str(row.mask))
        assert image.GetSize() == mask.GetSize() and image.GetDirection() == mask.GetDirection()
        assert image.GetPixelID() == sitk.sitkInt16 and sitk.GetArrayViewFromImage(mask).max() == 1
    with open(manifest.parent / "truth.csv", newline="") as handle:
        truth = list(csv.DictReader(handle))
    assert [t["case_id"] for t in truth] == [r["case_id"] for r in rows]
    assert {"p_er", "p_pr", "p_her2", "ki67_expected", "ki67_noise_sd", *LATENT_FEATURES} <= set(truth[0])


def test_cohort_case_does_not_depend_on_cohort_size(tmp_path):
    small = write_phantom_cohort(tmp_path / "two", 2, seed=3, **SMALL)
    large = write_phantom_cohort(tmp_path / "three", 3, seed=3, **SMALL)
    images = [sitk.ReadImage(str(m.parent / "images" / "phantom_0001.nii.gz")) for m in (small, large)]
    assert np.array_equal(_array(images[0]), _array(images[1]))
    assert images[0].GetSpacing() == images[1].GetSpacing()


def test_cohort_geometry_varies_like_a_multi_site_cohort():
    geometries = [case_geometry(0, i, SMALL["size_ijk"], SMALL["spacing_mm"]) for i in range(200)]
    in_plane = [g["spacing_mm"][0] for g in geometries]
    slices = [g["spacing_mm"][2] for g in geometries]
    assert 0.6 <= min(in_plane) and max(in_plane) <= 0.9 and 1.0 <= min(slices) and max(slices) <= 2.0
    flipped = [g for g in geometries if any(g["direction"][4 * a] < 0 for a in range(3))]
    assert 20 < len(flipped) < 180
    for g in geometries:  # the nominal field of view is kept
        fov = np.multiply(g["size_ijk"], g["spacing_mm"])
        assert fov == pytest.approx(np.multiply(SMALL["size_ijk"], SMALL["spacing_mm"]), abs=2.1)


def test_phantom_command_writes_a_cohort(tmp_path, capsys):
    out = tmp_path / "phantoms"
    status = main(["phantom", "--out", str(out), "--n", "2", "--seed", "1", "--size", "64,64,32",
                   "--spacing", "1.0,1.0,2.0", "--fixed-geometry"])  # fmt: skip
    assert status == 0
    assert len(read_manifest(out / "manifest.csv")) == 2
    assert sitk.ReadImage(str(out / "images" / "phantom_0000.nii.gz")).GetSpacing() == pytest.approx(
        (1, 1, 2)
    )
    assert "2 phantom case(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad",
    [
        ["--size", "64,64"],
        ["--spacing", "1,1,0"],
        ["--n", "0"],
        ["--size", "a,b,c"],
        ["--inplane-mm", "1.5,0.5"],
        ["--slice-mm", "2"],
        ["--lesion-mm", "5,80"],
        ["--prevalence", "er=0.2,pr=0.5"],  # PR+ lies mostly within ER+
        ["--prevalence", "esr1=0.5"],
        ["--missing", "ki67=1.5"],
        ["--missing", "ki67"],
        ["--fixed-geometry", "--inplane-mm", "0.5,1.5"],
        ["--reference", "--profile", "wide"],
    ],
)
def test_phantom_command_bad_arguments_exit_2_with_one_line(tmp_path, capsys, bad):
    out = tmp_path / "phantoms"
    assert main(["phantom", "--out", str(out), *bad]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("breast-subtype phantom: error:") and "\n" not in error
    assert not out.exists()


# --- Cohort variations (issue 10: a recipe robust to the cohort is tested on cohorts that vary) ---

# The cohort of seed 11 as it was before the variations existed: manifest.csv and truth.csv
# (its first 13 columns, the ones it had then) to the byte, the grids exactly, the voxels by their
# sums (a different CPU's float rounding may flip a voxel by one; any change of the generator moves
# a sum by thousands).
DEFAULT_COHORT_SHA256 = "b6b7a69048c04eb7c1129378756f4573127d2a0d40e8d6c07799a632d745dea9"
DEFAULT_COHORT_CASES = [  # size, spacing, flipped z, image sum, tumour voxels
    ((89, 89, 57), (0.717, 0.717, 1.125), False, 109512793, 4980),
    ((76, 76, 53), (0.841, 0.841, 1.198), False, 110738606, 17318),
    ((79, 79, 38), (0.813, 0.813, 1.689), False, 77559400, 1791),
    ((79, 79, 33), (0.812, 0.812, 1.949), True, 94024109, 3362),
]


def test_the_default_cohort_is_what_it_was_before_the_variations(tmp_path):
    manifest = write_phantom_cohort(tmp_path / "c", 4, seed=11, **SMALL)
    lines = (manifest.parent / "truth.csv").read_text(encoding="utf-8").splitlines()
    text = manifest.read_text(encoding="utf-8") + "".join(
        ",".join(line.split(",")[:13]) + "\n" for line in lines
    )
    assert hashlib.sha256(text.encode()).hexdigest() == DEFAULT_COHORT_SHA256
    for i, (size, spacing, flipped, total, tumour) in enumerate(DEFAULT_COHORT_CASES):
        image = sitk.ReadImage(str(manifest.parent / "images" / f"phantom_{i:04d}.nii.gz"))
        mask = sitk.ReadImage(str(manifest.parent / "masks" / f"phantom_{i:04d}.nii.gz"))
        assert image.GetSize() == size and image.GetPixelID() == sitk.sitkInt16
        assert image.GetSpacing() == pytest.approx(spacing, abs=1e-6)
        assert (image.GetDirection()[8] < 0) == flipped
        assert int(_array(image).astype(np.int64).sum()) == pytest.approx(total, abs=64)
        assert int(_array(mask).sum()) == pytest.approx(tumour, abs=2)


def test_spacing_ranges_are_honoured_and_the_field_of_view_kept():
    geometries = [
        case_geometry(5, i, (128, 128, 48), (0.7, 0.7, 1.5), (0.5, 1.5), (1.0, 3.0)) for i in range(300)
    ]
    in_plane = np.array([g["spacing_mm"][0] for g in geometries])
    slices = np.array([g["spacing_mm"][2] for g in geometries])
    assert 0.5 <= in_plane.min() < 0.55 and 1.45 < in_plane.max() <= 1.5
    assert 1.0 <= slices.min() < 1.1 and 2.9 < slices.max() <= 3.0
    for g in geometries:
        assert g["spacing_mm"][0] == g["spacing_mm"][1]
        fov = np.multiply(g["size_ijk"], g["spacing_mm"])
        assert fov == pytest.approx((89.6, 89.6, 72.0), abs=3.1)  # half a (coarse) voxel per side


def test_intensity_representations():
    image = generate_phantom(8, **SMALL).image
    integers = _array(image).astype(np.float64)
    same, kind = represent_intensity(image, "int12", 0, 0)
    assert kind == "int12" and same is image
    scales = []
    for index in range(8):
        stored, kind = represent_intensity(image, "float", 0, index)
        values = _array(stored).astype(np.float64)
        assert kind == "float" and stored.GetPixelID() == sitk.sitkFloat32
        assert stored.GetSpacing() == image.GetSpacing() and stored.GetDirection() == image.GetDirection()
        scale, offset = np.polyfit(integers.ravel(), values.ravel(), 1)
        assert 0.01 <= scale <= 100.0 and abs(offset) <= 0.1 * 4095 * scale + 1e-3
        residual = values - (scale * integers + offset)
        assert np.abs(residual).max() <= 0.51 * scale  # only sub-integer dither: continuous values
        assert len(np.unique(values)) > 3 * len(np.unique(integers))
        scales.append(scale)
    assert max(scales) / min(scales) > 100  # the scale varies across orders of magnitude
    stored, kind = represent_intensity(image, "unit", 0, 0)
    values = _array(stored)
    assert kind == "unit" and values.dtype == np.float32 and values.min() == 0.0 and values.max() == 1.0
    assert np.corrcoef(values.ravel(), integers.ravel())[0, 1] > 0.9999
    kinds = [represent_intensity(image, "mixed", 3, i)[1] for i in range(90)]
    assert all(15 <= kinds.count(k) <= 45 for k in ("int12", "float", "unit"))
    assert kinds == [
        represent_intensity(image, "mixed", 3, i)[1] for i in range(90)
    ]  # per case, reproducible


def test_lesion_diameter_range_is_geometric_and_within_range():
    latents = np.random.default_rng(0).standard_normal(4000)
    diameters = np.array([diameter_from_latent(z, (5.0, 60.0)) for z in latents])
    assert 5.0 <= diameters.min() < 7.0 and 50.0 < diameters.max() <= 60.0
    assert np.median(diameters) == pytest.approx(math.sqrt(5 * 60), rel=0.05)
    assert 0.15 < np.mean(diameters < 10.0) < 0.3  # small lesions are common, as in a clinic


def test_a_60_mm_lesion_grows_the_matrix_and_a_5_mm_one_keeps_a_few_voxels():
    large = generate_phantom(4, lesion_range_mm=(60.0, 60.0), direction=FLIP_XY, **SMALL)
    assert large.lesion_diameter_mm == 60.0
    assert all(n > s for n, s in zip(large.image.GetSize(), SMALL["size_ijk"]))  # never shrunk: grown
    assert large.image.GetSpacing() == pytest.approx(SMALL["spacing_mm"])
    for image in (large.tumour_mask, large.lesion_labels):
        assert image.GetSize() == large.image.GetSize() and image.GetOrigin() == large.image.GetOrigin()
    centre = [(n - 1) / 2 for n in large.image.GetSize()]
    assert large.image.TransformContinuousIndexToPhysicalPoint(centre) == pytest.approx((0, 0, 0), abs=1e-9)
    mask = _array(large.tumour_mask) > 0
    outside = ndimage.distance_transform_edt(~mask, sampling=SMALL["spacing_mm"][::-1])
    assert (
        outside[[0, -1]].min() > 6.0 and outside[:, [0, -1]].min() > 6.0 and outside[..., [0, -1]].min() > 6.0
    )
    volume_mm3 = mask.sum() * np.prod(SMALL["spacing_mm"])
    assert (6 * volume_mm3 / math.pi) ** (1 / 3) > 45.0
    coarse = {"size_ijk": (48, 48, 24), "spacing_mm": (1.5, 1.5, 3.0)}
    for seed in range(4):
        small = generate_phantom(seed, lesion_range_mm=(5.0, 5.0), **coarse)
        assert small.lesion_diameter_mm == 5.0 and small.image.GetSize() == coarse["size_ijk"]
        assert _array(small.tumour_mask).sum() >= 5


@pytest.mark.parametrize(
    "prevalence", [{"er": 0.45, "pr": 0.35, "her2": 0.30}, {"er": 0.15, "pr": 0.1, "her2": 0.7}]
)
def test_prevalences_are_reached_with_the_same_imaging_correlates(prevalence):
    target = check_prevalence(prevalence)
    _, labels = sample_biomarkers(np.random.default_rng(7), 300, target)
    for task, wanted in prevalence.items():
        assert labels[task].mean() == pytest.approx(wanted, abs=0.06)
    z = sample_latents(np.random.default_rng(8), 200_000)
    model, default = label_model(z, target), label_model(z)
    for task, wanted in prevalence.items():
        assert model[task].mean() == pytest.approx(wanted, abs=0.005)
    for task in ("er", "her2"):  # only the bias moved: the log-odds shift is the same for every case
        shift = np.log(model[task] / (1 - model[task])) - np.log(default[task] / (1 - default[task]))
        assert np.ptp(shift) < 1e-6


def test_a_phantom_truth_is_the_probability_under_its_prevalence():
    prevalence = {"her2": 0.6}
    case = generate_phantom(3, prevalence=prevalence, **SMALL)
    latents = {name: case.imaging_features[name] for name in LATENT_FEATURES}
    expected = label_model(latents, check_prevalence(prevalence))
    assert case.true_probabilities["her2"] == pytest.approx(float(expected["her2"]), rel=1e-12)
    assert case.true_probabilities["her2"] > generate_phantom(3, **SMALL).true_probabilities["her2"]


def test_missing_labels_are_exact_fractions_drawn_from_the_seed():
    blank = missing_labels(4, 300, {"ki67": 0.5, "er": 0.1})
    assert len(blank["ki67"]) == 150 and len(blank["er"]) == 30 and not blank["pr"] and not blank["her2"]
    assert blank == missing_labels(4, 300, {"ki67": 0.5, "er": 0.1})
    assert blank["ki67"] != missing_labels(5, 300, {"ki67": 0.5})["ki67"]


def test_the_wide_profile_and_explicit_options_over_it():
    wide = resolve_variation("wide")
    assert wide == {**PROFILES["wide"], "missing": {"ki67": 0.5}}
    assert (
        wide["inplane_mm"] == (0.5, 1.5)
        and wide["slice_mm"] == (1.0, 3.0)
        and wide["lesion_mm"] == (5.0, 60.0)
    )
    assert resolve_variation("wide", intensity="int12", missing={})["intensity"] == "int12"
    assert resolve_variation() == {"intensity": "int12", "inplane_mm": (0.6, 0.9), "slice_mm": (1.0, 2.0),
                                   "lesion_mm": None, "prevalence": None, "missing": {}}  # fmt: skip
    with pytest.raises(BadInputError):
        resolve_variation("narrow")


def test_phantom_command_writes_a_varied_cohort(tmp_path):
    out = tmp_path / "varied"
    status = main(["phantom", "--out", str(out), "--n", "4", "--seed", "2", "--size", "48,48,24",
                   "--spacing", "1.2,1.2,2.5", "--intensity", "unit", "--inplane-mm", "1.0,1.4",
                   "--slice-mm", "2,3", "--lesion-mm", "10,14", "--prevalence", "her2=0.5",
                   "--missing", "ki67=0.5,er=0.25"])  # fmt: skip
    assert status == 0
    rows = read_manifest(out / "manifest.csv")
    with open(out / "truth.csv", newline="") as handle:
        truth = list(csv.DictReader(handle))
    assert sum(row.ki67_percent is None for row in rows) == 2 and sum(row.er is None for row in rows) == 1
    for row, real in zip(rows, truth):
        image = sitk.ReadImage(str(row.image))
        values = _array(image)
        assert image.GetPixelID() == sitk.sitkFloat32 and values.min() == 0.0 and values.max() == 1.0
        spacing = image.GetSpacing()
        assert 1.0 <= spacing[0] <= 1.4 and 2.0 <= spacing[2] <= 3.0
        assert 10.0 <= float(real["lesion_diameter_mm"]) <= 14.0 and real["intensity"] == "unit"
        assert real["ki67_percent"] != "" and real["er"] in ("0", "1")  # truth keeps the real labels
        if row.ki67_percent is not None:
            assert row.ki67_percent == pytest.approx(float(real["ki67_percent"]), abs=0.05)
