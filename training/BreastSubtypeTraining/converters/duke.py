"""Duke-Breast-Cancer-MRI (TCIA) to a manifest.

Layout as downloaded from TCIA: ``root/Breast_MRI_001/<study>/<series>/*.dcm``, one folder per DICOM
series (named ``3.000000-ax dyn pre-93877`` by the NBIA downloader, or by UID in the "classic"
layout, so the series description is read from the DICOM header, not the folder name).
``Clinical_and_Other_Features.xlsx`` has a three-row header (group names, column names, value codes):
ER and PR are 0/1, HER2 0/1/2 with 2 = borderline, kept as unknown. No Ki-67.

The image of a case is its first post-contrast series ("ax dyn 1st pass", "ax 3d dyn 1st pass",
"Ph1/ax 3d dyn", ...), a DICOM folder the manifest points at directly. Duke ships tumour boxes
only; tumour masks come from MAMA-MIA (``segmentations/expert/DUKE_001.nii.gz``), whose NIfTI
geometry must match the DICOM series (the dataset resamples a mask on the same physical space and
refuses one that is not). Patients without images, a post-contrast series or a mask are left out
and listed in the result.

>>> convert_duke("Duke-Breast-Cancer-MRI", "Clinical_and_Other_Features.xlsx",
...              "MAMA-MIA/segmentations/expert", "duke/manifest.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import SimpleITK as sitk

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.progress import ProgressCallback, iterate
from BreastSubtypeTraining.converters import ConversionResult, read_xlsx_table, receptor_status
from BreastSubtypeTraining.manifest import ManifestRow, write_manifest

_PATIENT = re.compile(r"^breast_mri_(\d+)$", re.IGNORECASE)
# Descriptions of the first post-contrast phase seen in the collection ("1st pass" also glued to
# the sequence name, "Ph1/ax 3d dyn"); "pre" excludes the pre-contrast series.
_FIRST_POST = re.compile(
    r"(?<![0-9])1st|\bfirst\b|\bph(?:ase)?\s*0*1(?![0-9])|\bpass\s*0*1(?![0-9])|\bpost[\s_-]*0*1(?![0-9])"
)
_PRE = re.compile(r"\bpre\b")
MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha")


def _series_folders(patient_dir: Path) -> list[Path]:
    return sorted(Path(folder) for folder, _, files in os.walk(patient_dir) if files)


def _series_description(folder: Path) -> tuple[str, float]:
    """(description, series number) from the first readable file's header; the folder name otherwise."""
    for file in sorted(folder.iterdir()):
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(file))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            continue
        description = reader.GetMetaData("0008|103e") if reader.HasMetaDataKey("0008|103e") else folder.name
        try:
            number = float(reader.GetMetaData("0020|0011"))
        except (RuntimeError, ValueError):
            number = float("inf")
        return description.strip(), number
    return folder.name, float("inf")


def first_post_contrast_series(patient_dir: Path) -> Path | None:
    """The series folder of the first post-contrast phase (lowest series number if several match)."""
    candidates = []
    for folder in _series_folders(patient_dir):
        description, number = _series_description(folder)
        text = description.lower()
        if _FIRST_POST.search(text) and not _PRE.search(text):
            candidates.append((number, str(folder), folder))
    return min(candidates)[2] if candidates else None


def _mask_for(patient: str, masks_dir: Path) -> Path | None:
    number = int(_PATIENT.match(patient).group(1))
    for stem in (patient, f"DUKE_{number:03d}", f"duke_{number:03d}"):
        for suffix in MASK_SUFFIXES:
            candidate = masks_dir / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def convert_duke(
    root: str | os.PathLike,
    clinical_xlsx: str | os.PathLike,
    masks_dir: str | os.PathLike,
    out_manifest: str | os.PathLike,
    *,
    progress: ProgressCallback | None = None,
) -> ConversionResult:
    """Write a manifest of the Duke patients that have a first post-contrast series and a mask."""
    root, clinical_xlsx, masks_dir = Path(root), Path(clinical_xlsx), Path(masks_dir)
    for folder, what in ((root, "Duke-Breast-Cancer-MRI image folder"), (masks_dir, "mask folder")):
        if not folder.is_dir():
            raise BadInputError(f"{folder}: {what} not found.")
    table = read_xlsx_table(clinical_xlsx, "patient id", ("er", "pr", "her2"))
    rows: list[ManifestRow] = []
    skipped: dict[str, str] = {}
    for record in iterate(table, len(table), progress, "Duke: finding first post-contrast series"):
        patient = str(record["patient id"]).strip()
        if not _PATIENT.match(patient):
            skipped[patient] = "not a Duke patient id (Breast_MRI_NNN)"
            continue
        patient_dir = root / patient
        if not patient_dir.is_dir():
            skipped[patient] = "no image folder"
            continue
        series = first_post_contrast_series(patient_dir)
        if series is None:
            skipped[patient] = "no first post-contrast series"
            continue
        mask = _mask_for(patient, masks_dir)
        if mask is None:
            skipped[patient] = "no tumour mask"
            continue
        rows.append(
            ManifestRow(
                case_id=patient,
                image=series,
                mask=mask,
                er=receptor_status(record["er"]),
                pr=receptor_status(record["pr"]),
                her2=receptor_status(record["her2"]),
                ki67_percent=None,
            )
        )
    if not rows:
        raise BadInputError(
            f"{root}: no Duke patient has a first post-contrast series and a mask in {masks_dir}."
        )
    rows.sort(key=lambda row: row.case_id)
    return ConversionResult(write_manifest(rows, out_manifest), len(rows), skipped)
