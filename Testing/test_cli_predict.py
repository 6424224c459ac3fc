"""`breast-subtype predict` end to end: outputs of one case, and every bad input of SPEC §12 →
exit 2, one line naming the file, no output folder left behind."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
from predict_helpers import random_model_package, same_grid, small_case, write_case

from BreastSubtypeLib.cli.main import main
from BreastSubtypeLib.model.config import SIZE_FEATURES, NetworkConfig
from BreastSubtypeLib.preprocessing.margin_profile import MARGIN_PROFILE_FEATURES


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return random_model_package(tmp_path_factory.mktemp("model") / "random")


@pytest.fixture(scope="module")
def case_files(tmp_path_factory):
    case = small_case(3)
    image, mask = write_case(case, tmp_path_factory.mktemp("case"))
    return case, image, mask


def _image_like(case, array, **geometry):
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(case.image)
    for key, value in geometry.items():
        getattr(image, f"Set{key}")(value)
    return image


def test_one_case_writes_the_whole_case_folder(model, case_files, tmp_path, capsys):
    case, image, mask = case_files
    out = tmp_path / "out"
    assert main(["predict", "--image", str(image), "--mask", str(mask), "--out", str(out), "--model", str(model),
                 "--device", "cpu"]) == 0  # fmt: skip
    names = {p.name for p in out.iterdir()}
    assert {"prediction.json", "rois.nrrd", "attention.nrrd", "report.html", "overlay_axial.png",
            "overlay_coronal.png", "overlay_sagittal.png", "gradcam_er.nrrd", "gradcam_ki67.nrrd",
            "attention_scale0.nrrd"} <= names  # fmt: skip
    summary = json.loads((out / "prediction.json").read_text(encoding="utf-8"))
    assert list(summary) == ["model", "er", "pr", "her2", "ki67_percent", "subtype", "roi_weights",
                             "roi_volumes_ml", "warnings", "map_notes", "margin_profile", "timings_s", "input",
                             "maps"]  # fmt: skip
    margin = summary["margin_profile"]
    used = MARGIN_PROFILE_FEATURES[: NetworkConfig().n_scalar_features - len(SIZE_FEATURES)]
    assert set(margin["values"]) == set(margin["evidence"]["her2"]) == set(used)  # only what it reads
    assert set(margin["evidence"]) == {"er", "pr", "her2", "ki67"}
    assert "patient" not in summary  # only when asked
    assert set(summary["model"]) == {"id", "version", "demonstration"}
    for task in ("er", "pr", "her2"):
        assert set(summary[task]) == {"probability", "positive", "threshold"}
        assert isinstance(summary[task]["positive"], bool) and 0 <= summary[task]["probability"] <= 1
    assert isinstance(summary["ki67_percent"], float) and 0 <= summary["ki67_percent"] <= 100
    assert {"name", "scheme", "probability", "alternatives", "uncertain"} <= set(summary["subtype"])
    assert set(summary["roi_weights"]) == {"core", "rim", "peritumoral"}
    assert summary["input"]["spacing_mm"] == list(case.image.GetSpacing())
    for name in ("rois.nrrd", "attention.nrrd", "gradcam_her2.nrrd"):
        assert same_grid(sitk.ReadImage(str(out / name)), case.image), name
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "DEMONSTRATION MODEL" in html and "data:image/png;base64," in html and "src='http" not in html
    assert "report.html" in capsys.readouterr().out


def test_progress_json_lines_for_a_parent_process(model, case_files, tmp_path, capsys):
    _, image, mask = case_files
    argv = ["predict", "--image", str(image), "--mask", str(mask), "--out", str(tmp_path / "o"),
            "--model", str(model), "--device", "cpu", "--no-explain", "--progress-json"]  # fmt: skip
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    fractions = [line["progress"] for line in lines if "progress" in line]
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert lines[-1]["done"] is True and lines[-1]["report"].endswith("report.html")


def _bad_inputs(case, folder):
    """name -> (image path, mask path, text the message must contain)."""
    image_path, mask_path = write_case(case, folder, "good")
    array = sitk.GetArrayFromImage(case.image).astype(np.float32)
    mask_array = sitk.GetArrayFromImage(case.tumour_mask)
    made = {}

    def save(name, image, role):
        path = folder / f"{name}_{role}.nrrd"
        sitk.WriteImage(image, str(path))
        return path

    text = folder / "notes_image.nrrd"
    text.write_text("not an image")
    made["not an image file"] = (text, mask_path, "notes_image.nrrd")
    made["missing file"] = (folder / "absent.nrrd", mask_path, "absent.nrrd")
    made["2D image"] = (
        save("flat", sitk.GetImageFromArray(array[10]), "image"),
        mask_path,
        "flat_image.nrrd",
    )
    vector = sitk.Compose([case.image, case.image])
    made["multi-component image"] = (save("vector", vector, "image"), mask_path, "vector_image.nrrd")
    empty = _image_like(case, np.zeros_like(mask_array))
    made["empty mask"] = (image_path, save("empty", empty, "mask"), "empty_mask.nrrd")
    far = _image_like(case, mask_array, Origin=(900.0, 900.0, 900.0))
    made["mask elsewhere"] = (image_path, save("far", far, "mask"), "far_mask.nrrd")
    labels = mask_array.copy()
    labels[labels > 0] = np.where(np.arange(int((labels > 0).sum())) % 2, 1, 2)
    made["non-binary mask"] = (
        image_path,
        save("labels", _image_like(case, labels), "mask"),
        "labels_mask.nrrd",
    )
    nan = array.copy()
    nan[0, 0, 0] = np.nan
    made["NaN intensities"] = (save("nan", _image_like(case, nan), "image"), mask_path, "nan_image.nrrd")
    made["constant image"] = (save("const", _image_like(case, np.full_like(array, 7)), "image"), mask_path,
                              "const_image.nrrd")  # fmt: skip
    absurd = _image_like(case, array, Spacing=(70.0, 70.0, 150.0))
    made["absurd spacing"] = (save("absurd", absurd, "image"), mask_path, "absurd_image.nrrd")
    huge = folder / "huge_image.nhdr"
    huge.write_text("NRRD0004\ntype: short\ndimension: 3\nsizes: 4000 4000 2000\nencoding: raw\n"
                    "data file: huge_image.raw\n\n")  # fmt: skip
    made["huge volume"] = (huge, mask_path, "huge_image.nhdr")
    return made


BAD_CASES = ["not an image file", "missing file", "2D image", "multi-component image", "empty mask",
             "mask elsewhere", "non-binary mask", "NaN intensities", "constant image", "absurd spacing",
             "huge volume"]  # fmt: skip


@pytest.fixture(scope="module")
def bad_inputs(case_files, tmp_path_factory):
    return _bad_inputs(case_files[0], tmp_path_factory.mktemp("bad"))


@pytest.mark.parametrize("problem", BAD_CASES)
def test_bad_input_exits_2_with_one_line_and_leaves_nothing(problem, bad_inputs, model, tmp_path, capsys):
    image, mask, named = bad_inputs[problem]
    out = tmp_path / "out"
    argv = ["predict", "--image", str(image), "--mask", str(mask), "--out", str(out), "--model", str(model),
            "--device", "cpu"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_lesion_of_a_few_voxels_is_refused(model, case_files, tmp_path, capsys):
    case, image, _ = case_files
    tiny = np.zeros(sitk.GetArrayViewFromImage(case.tumour_mask).shape, np.uint8)
    tiny[16, 32, 32] = 1
    mask = tmp_path / "tiny_mask.nrrd"
    sitk.WriteImage(_image_like(case, tiny), str(mask))
    out = tmp_path / "out"
    argv = ["predict", "--image", str(image), "--mask", str(mask), "--out", str(out), "--model", str(model)]
    assert main(argv) == 2
    assert capsys.readouterr().err.count("\n") == 1 and not out.exists()


def test_out_folder_that_is_not_a_case_folder_is_never_replaced(model, case_files, tmp_path, capsys):
    _, image, mask = case_files
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.docx").write_text("years of work")
    argv = [
        "predict",
        "--image",
        str(image),
        "--mask",
        str(mask),
        "--out",
        str(precious),
        "--model",
        str(model),
    ]
    assert main(argv) == 2
    assert (precious / "thesis.docx").read_text(encoding="utf-8") == "years of work"
    assert "not a BreastSubtype case folder" in capsys.readouterr().err


def test_unknown_model_is_bad_input(case_files, tmp_path, capsys):
    _, image, mask = case_files
    argv = [
        "predict",
        "--image",
        str(image),
        "--mask",
        str(mask),
        "--out",
        str(tmp_path / "o"),
        "--model",
        "nope",
    ]
    assert main(argv) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def edited_rois(case_files, tmp_path_factory):
    """ROIs with the peritumoral band erased below the lesion centre, as a radiologist might edit them."""
    from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL
    from BreastSubtypeLib.rois.regions import compute_rois

    case = case_files[0]
    labels = sitk.GetArrayFromImage(compute_rois(case.image, case.tumour_mask).labelmap)
    centre_j = int(np.mean(np.nonzero(labels == CORE)[1]))
    labels[:, :centre_j][labels[:, :centre_j] == PERITUMORAL] = 0
    path = tmp_path_factory.mktemp("rois") / "edited_rois.nrrd"
    sitk.WriteImage(_image_like(case, labels), str(path), True)
    return labels, path


def test_rois_are_used_as_given_and_written_back_voxel_for_voxel(model, case_files, edited_rois, tmp_path):
    case, image, _ = case_files
    labels, rois = edited_rois
    out = tmp_path / "out"
    argv = ["predict", "--image", str(image), "--rois", str(rois), "--out", str(out), "--model", str(model),
            "--device", "cpu", "--no-explain"]  # fmt: skip
    assert main(argv) == 0
    written = sitk.ReadImage(str(out / "rois.nrrd"))
    assert same_grid(written, case.image)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), labels)
    volumes = json.loads((out / "prediction.json").read_text(encoding="utf-8"))["roi_volumes_ml"]
    voxel_ml = float(np.prod(case.image.GetSpacing())) / 1000.0
    assert volumes["peritumoral"] == pytest.approx(float((labels == 3).sum()) * voxel_ml)


def test_rois_with_a_foreign_label_exit_2_naming_the_file(model, case_files, edited_rois, tmp_path, capsys):
    case, image, _ = case_files
    wrong = edited_rois[0].copy()
    wrong[wrong == 3] = 7
    path = tmp_path / "wrong_rois.nrrd"
    sitk.WriteImage(_image_like(case, wrong), str(path))
    out = tmp_path / "out"
    argv = ["predict", "--image", str(image), "--rois", str(path), "--out", str(out), "--model", str(model)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong_rois.nrrd" in err and "label 7" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("inputs", [("--mask", "--rois"), ()], ids=["both", "neither"])
def test_one_case_needs_exactly_one_of_mask_or_rois(model, case_files, edited_rois, tmp_path, capsys, inputs):
    _, image, mask = case_files
    given = {"--mask": str(mask), "--rois": str(edited_rois[1])}
    argv = ["predict", "--image", str(image), "--out", str(tmp_path / "o"), "--model", str(model)]
    for flag in inputs:
        argv += [flag, given[flag]]
    assert main(argv) == 2
    assert "exactly one of --mask" in capsys.readouterr().err and not (tmp_path / "o").exists()


def _dicom_series(case, folder, patient):
    """The case image as an axial DICOM series (one file per slice) carrying patient tags."""
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    image = sitk.Cast(case.image, sitk.sitkInt16)
    direction = image.GetDirection()
    series_tags = {
        "0010|0010": patient["name"], "0010|0020": patient["id"], "0010|0030": patient["birth_date"],
        "0008|0060": "MR", "0020|000d": "1.2.826.0.1.3680043.2.1125.1", "0020|000e": "1.2.826.0.1.3680043.2.1125.2",
        "0020|0037": "\\".join(str(v) for v in (*direction[0::3], *direction[1::3])),
    }  # fmt: skip
    for k in range(image.GetDepth()):
        plane = image[:, :, k]
        for tag, value in series_tags.items():
            plane.SetMetaData(tag, value)
        plane.SetMetaData(
            "0020|0032", "\\".join(str(v) for v in image.TransformIndexToPhysicalPoint((0, 0, k)))
        )
        plane.SetMetaData("0020|0013", str(k + 1))
        writer.SetFileName(str(folder / f"slice_{k:03d}.dcm"))
        writer.Execute(plane)
    return folder


PATIENT = {"name": "DOE^JANE", "id": "P-0042", "birth_date": "19700101"}


@pytest.fixture(scope="module")
def dicom_case(case_files, tmp_path_factory):
    case, _, mask = case_files
    return _dicom_series(case, tmp_path_factory.mktemp("dicom") / "series", PATIENT), mask


def test_patient_tags_of_a_dicom_series_are_written_only_when_asked(model, dicom_case, tmp_path):
    from BreastSubtypeLib.inference.patient_info import read_patient_info

    series, mask = dicom_case
    assert read_patient_info(series) == PATIENT
    for asked in (False, True):
        out = tmp_path / f"asked_{asked}"
        argv = ["predict", "--image", str(series), "--mask", str(mask), "--out", str(out), "--model", str(model),
                "--device", "cpu", "--no-explain"] + (["--include-patient-info"] if asked else [])  # fmt: skip
        assert main(argv) == 0
        summary = json.loads((out / "prediction.json").read_text(encoding="utf-8"))
        assert summary.get("patient") == (PATIENT if asked else None)
        # Nothing of the patient in any other output, asked or not (map headers, report, ROI file).
        for path in out.iterdir():
            if path.name != "prediction.json":
                assert b"DOE^JANE" not in path.read_bytes() and b"P-0042" not in path.read_bytes(), path.name


def test_patient_info_of_a_file_without_tags_is_nothing(case_files):
    from BreastSubtypeLib.inference.patient_info import read_patient_info

    assert read_patient_info(case_files[1]) == {}


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--shard", "1/2"], "need --manifest"),
        (["--workers", "2"], "need --manifest"),
    ],
)
def test_cohort_options_on_one_case_are_refused(model, case_files, tmp_path, capsys, extra, message):
    _, image, mask = case_files
    argv = ["predict", "--image", str(image), "--mask", str(mask), "--out", str(tmp_path / "o"), "--model",
            str(model), *extra]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not (tmp_path / "o").exists()


def test_a_cohort_writes_patient_tags_only_when_asked_too(model, dicom_case, tmp_path):
    series, mask = dicom_case
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(f"case_id,image,mask\ndcm,{series},{mask}\n")
    for asked in (False, True):
        out = tmp_path / f"cohort_{asked}"
        argv = ["predict", "--manifest", str(manifest), "--out", str(out), "--model", str(model), "--device", "cpu",
                "--no-explain", "--scheme", "st_gallen_2011"] + (["--include-patient-info"] if asked else [])  # fmt: skip
        assert main(argv) == 0
        summary = json.loads((out / "cases" / "dcm" / "prediction.json").read_text(encoding="utf-8"))
        assert summary.get("patient") == (PATIENT if asked else None)
        assert summary["subtype"]["scheme"] == "st_gallen_2011"  # the scheme reaches cohorts
