"""MAMA-MIA to a manifest.

Layout: ``root/images/{ID}/{ID}_0001.nii.gz`` is the first post-contrast phase (``_0000`` is the
pre-contrast one), ``root/segmentations/expert/{ID}.nii.gz`` the expert tumour mask, and
``root/clinical_and_imaging_info.xlsx`` one row per patient (``patient_id``, ``er``, ``pr``,
``her2``, ``hr``; 0/1 or empty). MAMA-MIA has no Ki-67 and no PR for some collections: missing
labels stay empty, except that ``hr`` (hormone receptor: ER or PR positive) = 0 says a missing ER
or PR is negative.

>>> convert_mamamia("MAMA-MIA", "mamamia/manifest.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.progress import ProgressCallback, iterate
from BreastSubtypeTraining.converters import ConversionResult, read_xlsx_table, receptor_status
from BreastSubtypeTraining.manifest import ManifestRow, write_manifest

CLINICAL_XLSX = "clinical_and_imaging_info.xlsx"
FIRST_POST_CONTRAST = "{id}_0001.nii.gz"


def convert_mamamia(
    root: str | os.PathLike,
    out_manifest: str | os.PathLike,
    *,
    progress: ProgressCallback | None = None,
) -> ConversionResult:
    """Write a manifest of the MAMA-MIA patients with a first post-contrast image and an expert mask."""
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(f"{root}: MAMA-MIA folder not found.")
    table = read_xlsx_table(root / CLINICAL_XLSX, "patient_id", ("er", "pr", "her2"), max_header_rows=1)
    rows: list[ManifestRow] = []
    skipped: dict[str, str] = {}
    for record in iterate(table, len(table), progress, "MAMA-MIA: listing cases"):
        patient = str(record["patient_id"]).strip()
        image = root / "images" / patient / FIRST_POST_CONTRAST.format(id=patient)
        mask = root / "segmentations" / "expert" / f"{patient}.nii.gz"
        if not image.is_file():
            skipped[patient] = "no first post-contrast image (_0001)"
            continue
        if not mask.is_file():
            skipped[patient] = "no expert segmentation"
            continue
        er, pr = receptor_status(record["er"]), receptor_status(record["pr"])
        if receptor_status(record.get("hr")) == 0:  # hormone-receptor negative: ER- and PR-
            er = 0 if er is None else er
            pr = 0 if pr is None else pr
        rows.append(
            ManifestRow(
                case_id=patient,
                image=image,
                mask=mask,
                er=er,
                pr=pr,
                her2=receptor_status(record["her2"]),
                ki67_percent=None,
            )
        )
    if not rows:
        raise BadInputError(f"{root}: no MAMA-MIA case has both images/ID/ID_0001.nii.gz and an expert mask.")
    rows.sort(key=lambda row: row.case_id)
    return ConversionResult(write_manifest(rows, out_manifest), len(rows), skipped)
