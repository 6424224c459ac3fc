"""Duke-Breast-Cancer-MRI and MAMA-MIA converters on small synthetic replicas of their layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pytest
import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeTraining.converters.duke import convert_duke
from BreastSubtypeTraining.converters.mamamia import convert_mamamia
from BreastSubtypeTraining.manifest import read_manifest

ORIGIN = (-40.0, -30.0, 12.0)
SPACING = (0.7, 0.7, 1.1)


def _volume(value: int = 100) -> sitk.Image:
    image = sitk.GetImageFromArray(np.full((4, 8, 8), value, np.int16))
    image.SetSpacing(SPACING)
    image.SetOrigin(ORIGIN)
    return image


def _write_dicom_series(folder: Path, description: str, series_number: int, value: int) -> None:
    """A 4-slice axial DICOM series with its description and number in the header."""
    folder.mkdir(parents=True)
    volume = _volume(value)
    series_uid = f"1.2.826.0.1.3680043.2.1125.{series_number}.{value}"
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(volume.GetDepth()):
        slice_ = volume[:, :, k]
        position = volume.TransformIndexToPhysicalPoint((0, 0, k))
        for tag, text in {
            "0008|0060": "MR",
            "0008|103e": description,
            "0020|0011": str(series_number),
            "0020|000e": series_uid,
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{c:.4f}" for c in position),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0018|0050": str(SPACING[2]),
        }.items():
            slice_.SetMetaData(tag, text)
        writer.SetFileName(str(folder / f"1-{k + 1:03d}.dcm"))
        writer.Execute(slice_)


def _duke_clinical(path: Path, records: list[tuple]) -> None:
    """Clinical_and_Other_Features.xlsx with its three-row header (groups, names, value codes)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Data"
    sheet.append(["Patient Information", None, "Tumor Characteristics", None, None, None, "Other side"])
    sheet.append(["Patient ID", "Days to MRI", "ER", "PR", "HER2", "Mol Subtype", "ER"])
    sheet.append(
        [
            None,
            None,
            "{0 = neg, 1 = pos}",
            "{0 = neg, 1 = pos}",
            "{0 = neg, 1 = pos, 2 = borderline}",
            None,
            None,
        ]
    )
    for record in records:
        sheet.append(list(record))
    book.save(path)


@pytest.fixture()
def duke(tmp_path):
    root = tmp_path / "Duke-Breast-Cancer-MRI"
    study = "01-01-1990-NA-MRI BREAST BILATERAL W  WO-93877"
    # 001: NBIA folder names; 2nd pass listed before 1st to prove the header is what counts.
    _write_dicom_series(root / "Breast_MRI_001" / study / "3.000000-ax dyn pre-93877", "ax dyn pre", 3, 10)
    _write_dicom_series(
        root / "Breast_MRI_001" / study / "4.000000-ax dyn 1st pass-11111", "ax dyn 1st pass", 4, 20
    )
    _write_dicom_series(
        root / "Breast_MRI_001" / study / "5.000000-ax dyn 2nd pass-22222", "ax dyn 2nd pass", 5, 30
    )
    # 002: "classic" layout with UID folder names and the Ph1/ convention.
    _write_dicom_series(root / "Breast_MRI_002" / "1.3.6.1" / "1.3.6.1.7", "ax 3d dyn", 7, 40)
    _write_dicom_series(root / "Breast_MRI_002" / "1.3.6.1" / "1.3.6.1.8", "Ph1/ax 3d dyn", 8, 50)
    # 003: images but only a pre-contrast series; 004: no mask; 005: no images at all.
    _write_dicom_series(root / "Breast_MRI_003" / "s" / "3.000000-ax dyn pre-3", "ax dyn pre", 3, 60)
    _write_dicom_series(
        root / "Breast_MRI_004" / "s" / "4.000000-ax dyn 1st pass-4", "ax dyn 1st pass", 4, 70
    )
    masks = tmp_path / "MAMA-MIA" / "segmentations" / "expert"
    masks.mkdir(parents=True)
    for number in (1, 2, 3, 5):
        sitk.WriteImage(sitk.Cast(_volume(1), sitk.sitkUInt8), str(masks / f"DUKE_{number:03d}.nii.gz"))
    clinical = tmp_path / "Clinical_and_Other_Features.xlsx"
    _duke_clinical(
        clinical,
        [
            ("Breast_MRI_001", 5, 1, 0, 2, 0, 0),
            ("Breast_MRI_002", 7, 0, 1, 1, 3, 1),
            ("Breast_MRI_003", 1, 1, 1, 0, 0, 1),
            ("Breast_MRI_004", 1, 1, 1, 0, 0, 1),
            ("Breast_MRI_005", 1, 1, 1, 0, 0, 1),
        ],
    )
    return root, clinical, masks


def test_duke_manifest_has_the_first_post_contrast_series_labels_and_masks(duke, tmp_path):
    root, clinical, masks = duke
    result = convert_duke(root, clinical, masks, tmp_path / "out" / "manifest.csv")
    assert result.manifest.read_text(encoding="utf-8").splitlines() == [
        "case_id,image,mask,er,pr,her2,ki67,split,patient_id",
        "Breast_MRI_001,../Duke-Breast-Cancer-MRI/Breast_MRI_001/01-01-1990-NA-MRI BREAST BILATERAL W  WO-93877/"
        "4.000000-ax dyn 1st pass-11111,../MAMA-MIA/segmentations/expert/DUKE_001.nii.gz,1,0,,,,Breast_MRI_001",
        "Breast_MRI_002,../Duke-Breast-Cancer-MRI/Breast_MRI_002/1.3.6.1/1.3.6.1.8,"
        "../MAMA-MIA/segmentations/expert/DUKE_002.nii.gz,0,1,1,,,Breast_MRI_002",
    ]
    assert result.n_cases == 2
    assert result.skipped == {
        "Breast_MRI_003": "no first post-contrast series",
        "Breast_MRI_004": "no tumour mask",
        "Breast_MRI_005": "no image folder",
    }


def test_duke_manifest_images_read_as_the_first_post_contrast_volume(duke, tmp_path):
    from BreastSubtypeLib.imaging.io import read_image

    root, clinical, masks = duke
    rows = read_manifest(convert_duke(root, clinical, masks, tmp_path / "m.csv").manifest)
    image = read_image(rows[0].image)
    assert sitk.GetArrayViewFromImage(image).max() == 20  # the 1st pass series, not pre (10) or 2nd (30)
    assert image.GetOrigin() == pytest.approx(ORIGIN) and image.GetSpacing() == pytest.approx(SPACING)


def test_duke_spreadsheet_without_a_her2_column_is_refused(tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["Patient Information"])
    book.active.append(["Patient ID", "ER", "PR"])
    book.save(tmp_path / "clinical.xlsx")
    (tmp_path / "root").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(BadInputError, match=r"clinical.xlsx: the sheet 'Sheet' has no her2 column"):
        convert_duke(tmp_path / "root", tmp_path / "clinical.xlsx", tmp_path / "masks", tmp_path / "m.csv")
    assert not (tmp_path / "m.csv").exists()


def _mamamia(root: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "dataset_info"
    sheet.append(["patient_id", "dataset", "age", "er", "pr", "her2", "hr", "pcr"])
    sheet.append(["DUKE_001", "DUKE", 51, 1.0, 0.0, 0.0, 1.0, 0])
    sheet.append(["ISPY1_1001", "ISPY1", 40, None, None, 1.0, 0.0, 1])
    sheet.append(["ISPY2_100899", "ISPY2", 60, None, None, 0.0, 1.0, None])
    sheet.append(["NACT_01", "NACT", 45, 1.0, 1.0, 0.0, 1.0, 0])
    sheet.append(["NACT_02", "NACT", 45, 0.0, 0.0, 1.0, 0.0, 0])
    book.save(root / "clinical_and_imaging_info.xlsx")
    for case in ("DUKE_001", "ISPY1_1001", "ISPY2_100899", "NACT_01"):
        (root / "images" / case).mkdir(parents=True)
        for phase in ("0000", "0001", "0002"):
            sitk.WriteImage(_volume(int(phase) + 1), str(root / "images" / case / f"{case}_{phase}.nii.gz"))
    expert = root / "segmentations" / "expert"
    expert.mkdir(parents=True)
    for case in ("DUKE_001", "ISPY1_1001", "ISPY2_100899", "NACT_02"):
        sitk.WriteImage(sitk.Cast(_volume(1), sitk.sitkUInt8), str(expert / f"{case}.nii.gz"))


def test_mamamia_manifest_uses_phase_0001_the_expert_mask_and_hr(tmp_path):
    root = tmp_path / "MAMA-MIA"
    root.mkdir()
    _mamamia(root)
    result = convert_mamamia(root, root / "manifest.csv")
    assert result.manifest.read_text(encoding="utf-8").splitlines() == [
        "case_id,image,mask,er,pr,her2,ki67,split,patient_id",
        "DUKE_001,images/DUKE_001/DUKE_001_0001.nii.gz,segmentations/expert/DUKE_001.nii.gz,1,0,0,,,DUKE_001",
        "ISPY1_1001,images/ISPY1_1001/ISPY1_1001_0001.nii.gz,segmentations/expert/ISPY1_1001.nii.gz,0,0,1,,,ISPY1_1001",
        "ISPY2_100899,images/ISPY2_100899/ISPY2_100899_0001.nii.gz,segmentations/expert/ISPY2_100899.nii.gz,,,0,,,"
        "ISPY2_100899",
    ]
    assert result.skipped == {
        "NACT_01": "no expert segmentation",
        "NACT_02": "no first post-contrast image (_0001)",
    }
    assert [row.ki67_percent for row in read_manifest(result.manifest)] == [None, None, None]


def test_mamamia_folder_without_its_spreadsheet_is_bad_input(tmp_path):
    with pytest.raises(BadInputError, match="clinical_and_imaging_info.xlsx: clinical spreadsheet not found"):
        convert_mamamia(tmp_path, tmp_path / "manifest.csv")
