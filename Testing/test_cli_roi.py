"""``breast-subtype roi``: the labelmap in the input geometry, and every bad input refused with exit 2,
one line on stderr naming the file, and nothing written."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from BreastSubtypeLib.cli.main import main
from BreastSubtypeLib.rois import CORE, PERITUMORAL, RIM


@pytest.fixture
def case(tmp_path, synth):
    direction = np.diag([-1.0, -1.0, 1.0])
    image, mask = synth.ellipsoid_case(size=(48, 48, 24), direction=direction, radii_mm=(6, 5, 7))
    sitk.WriteImage(image, str(tmp_path / "image.nrrd"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    return tmp_path, image, mask


def test_mask_gives_labelmap_in_input_geometry(case, capsys):
    folder, image, mask = case
    code = main(
        [
            "roi",
            "--image",
            str(folder / "image.nrrd"),
            "--mask",
            str(folder / "mask.nii.gz"),
            "--out",
            str(folder / "out" / "rois.nrrd"),
            "--rim-mm",
            "2",
            "--peri-mm",
            "4",
        ]
    )
    assert code == 0
    rois = sitk.ReadImage(str(folder / "out" / "rois.nrrd"))
    assert rois.GetSize() == image.GetSize() and np.allclose(rois.GetDirection(), image.GetDirection())
    assert np.allclose(rois.GetOrigin(), image.GetOrigin()) and np.allclose(
        rois.GetSpacing(), image.GetSpacing()
    )
    labels = sitk.GetArrayViewFromImage(rois)
    assert set(np.unique(labels)) == {0, CORE, RIM, PERITUMORAL}
    assert np.array_equal(
        labels[sitk.GetArrayViewFromImage(mask) > 0] > 0,
        np.ones(int(sitk.GetArrayViewFromImage(mask).sum()), bool),
    )
    out = capsys.readouterr().out
    assert "peritumoral" in out and "mL" in out


def _write(path, image):
    sitk.WriteImage(image, str(path))
    return str(path)


def _bad_inputs(folder, image, mask, synth):
    """(name, argv tail, the file the message must name)."""
    good_image, good_mask = str(folder / "image.nrrd"), str(folder / "mask.nii.gz")
    values = sitk.GetArrayFromImage(image).astype(np.float32)
    nan_values = values.copy()
    nan_values[2, 3, 4] = np.nan
    labels = sitk.GetArrayFromImage(mask)
    two_labels = labels.copy()
    two_labels[0, 0, 0] = 2
    far = sitk.Image(mask)
    far.SetOrigin([o + 400 for o in mask.GetOrigin()])
    text = folder / "notes.nrrd"
    text.write_text("not an image")
    huge_spacing = sitk.Image(image)
    huge_spacing.SetSpacing((70, 70, 150))

    def geo(array):
        made = synth.image_from_array(array)
        made.CopyInformation(
            image
        ) if made.GetDimension() == 3 and made.GetSize() == image.GetSize() else None
        return made

    return [
        ("missing image", ["--image", str(folder / "nope.nrrd"), "--mask", good_mask], "nope.nrrd"),
        ("not an image", ["--image", str(text), "--mask", good_mask], "notes.nrrd"),
        (
            "2-D image",
            [
                "--image",
                _write(folder / "flat2d.nrrd", sitk.Image([20, 20], sitk.sitkInt16)),
                "--mask",
                good_mask,
            ],
            "flat2d.nrrd",
        ),
        (
            "4-D image",
            [
                "--image",
                _write(folder / "four.nii.gz", sitk.Image([8, 8, 8, 2], sitk.sitkInt16)),
                "--mask",
                good_mask,
            ],
            "four.nii.gz",
        ),
        (
            "vector image",
            [
                "--image",
                _write(folder / "rgb.nrrd", sitk.Image([8, 8, 8], sitk.sitkVectorUInt8, 3)),
                "--mask",
                good_mask,
            ],
            "rgb.nrrd",
        ),
        ("NaN", ["--image", _write(folder / "nan.nrrd", geo(nan_values)), "--mask", good_mask], "nan.nrrd"),
        (
            "constant",
            ["--image", _write(folder / "const.nrrd", geo(values * 0 + 5)), "--mask", good_mask],
            "const.nrrd",
        ),
        (
            "absurd spacing",
            ["--image", _write(folder / "metres.nrrd", huge_spacing), "--mask", good_mask],
            "metres.nrrd",
        ),
        (
            "empty mask",
            ["--image", good_image, "--mask", _write(folder / "empty.nrrd", geo(labels * 0))],
            "empty.nrrd",
        ),
        (
            "non-binary mask",
            ["--image", good_image, "--mask", _write(folder / "labels.nrrd", geo(two_labels))],
            "labels.nrrd",
        ),
        ("mask elsewhere", ["--image", good_image, "--mask", _write(folder / "far.nrrd", far)], "far.nrrd"),
        ("negative rim", ["--image", good_image, "--mask", good_mask, "--rim-mm", "-1"], "rim"),
        ("zero peri", ["--image", good_image, "--mask", good_mask, "--peri-mm", "0"], "peritumoral"),
        ("absurd peri", ["--image", good_image, "--mask", good_mask, "--peri-mm", "80"], "peritumoral"),
    ]


def test_every_bad_input_is_one_line_exit_2_and_nothing_written(case, synth, capsys):
    folder, image, mask = case
    for name, argv, named in _bad_inputs(folder, image, mask, synth):
        out = folder / "result" / "rois.nrrd"
        code = main(["roi", *argv, "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2, name
        assert err.count("\n") == 1 and named in err and "Traceback" not in err, (name, err)
        assert not out.parent.exists() or not any(out.parent.iterdir()), name


def test_seed_in_air_is_refused_without_output(tmp_path, synth, capsys):
    values = np.zeros((24, 48, 48), np.float32)
    values[:, :, 24:] = 400
    values[8:16, 20:28, 30:38] = 1500
    rng = np.random.default_rng(2)
    image = synth.image_from_array(
        (values + np.abs(rng.normal(0, 10, values.shape))).astype(np.int16), (0.7, 0.7, 1.5)
    )
    path = _write(tmp_path / "image.nrrd", image)
    air_lps = image.TransformIndexToPhysicalPoint([5, 24, 12])
    code = main(
        [
            "roi",
            "--image",
            path,
            "--seed-lps",
            ",".join(str(v) for v in air_lps),
            "--out",
            str(tmp_path / "o" / "r.nrrd"),
        ]
    )
    assert code == 2 and "air" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def _seed_and_box(folder, seed_flag, seed, box_flag, box, out_name):
    return [
        "roi",
        "--image",
        str(folder / "image.nrrd"),
        # "--flag=value": argparse would read a value starting with "-" as an option.
        seed_flag + "=" + ",".join(f"{v:g}" for v in seed),
        box_flag + "=" + ",".join(f"{v:g}" for v in box),
        "--out",
        str(folder / out_name / "rois.nrrd"),
    ]


def test_box_in_lps_with_an_lps_seed_matches_the_ras_pair(case, capsys):
    folder, image, mask = case
    box_lps = (-12.0, -12.0, -14.0, 12.0, 12.0, 14.0)
    box_ras = (12.0, 12.0, -14.0, -12.0, -12.0, 14.0)  # the same corners, x and y negated
    assert main(_seed_and_box(folder, "--seed-lps", (0, 0, 0), "--box-lps", box_lps, "lps")) == 0
    assert main(_seed_and_box(folder, "--seed-ras", (0, 0, 0), "--box-ras", box_ras, "ras")) == 0
    lps = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "lps" / "rois_tumour.nrrd")))
    ras = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "ras" / "rois_tumour.nrrd")))
    truth = sitk.GetArrayViewFromImage(mask) > 0
    assert np.array_equal(lps, ras)
    assert 2 * np.logical_and(lps > 0, truth).sum() / ((lps > 0).sum() + truth.sum()) >= 0.9


@pytest.mark.parametrize(
    "seed_flag, box_flag, named",
    [("--seed-lps", "--box-ras", "--box-ras"), ("--seed-ras", "--box-lps", "--box-lps")],
)
def test_box_in_the_other_space_than_the_seed_is_refused(case, capsys, seed_flag, box_flag, named):
    folder, _, _ = case
    argv = _seed_and_box(folder, seed_flag, (0, 0, 0), box_flag, (-12, -12, -14, 12, 12, 14), "mixed")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "seed's space" in err, err
    assert not (folder / "mixed").exists()


def test_box_with_a_mask_is_refused(case, capsys):
    folder, _, _ = case
    argv = ["roi", "--image", str(folder / "image.nrrd"), "--mask", str(folder / "mask.nii.gz")]
    argv += ["--box-lps=-12,-12,-14,12,12,14", "--out", str(folder / "boxed" / "rois.nrrd")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--box-lps" in err and "--mask" in err, err
    assert not (folder / "boxed").exists()
