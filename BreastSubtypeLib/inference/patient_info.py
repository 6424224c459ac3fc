"""Patient name, ID and birth date from a DICOM input, read only when the user asks for them.

``read_image`` drops every DICOM tag (SPEC §12: nothing of the patient reaches an output unless
asked), so with ``--include-patient-info`` the tags are read here, from the header of the series'
first file as the series reader lists it: no pixels are read a second time.

>>> read_patient_info("study/series_folder")  # doctest: +SKIP
{'name': 'DOE^JANE', 'id': 'P-0042', 'birth_date': '19700101'}
"""

from __future__ import annotations

import os
from pathlib import Path

import SimpleITK as sitk

PATIENT_TAGS = {"0010|0010": "name", "0010|0020": "id", "0010|0030": "birth_date"}


def _header_file(path: Path) -> Path | None:
    if not path.is_dir():
        return path
    series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))
    if not series:
        return None
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series[0])
    return Path(files[0]) if files else None


def read_patient_info(path: str | os.PathLike) -> dict[str, str]:
    """``{"name", "id", "birth_date"}`` (those present) of a DICOM file or series folder; ``{}`` otherwise."""
    header = _header_file(Path(path))
    if header is None:
        return {}
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(header))
    try:
        reader.ReadImageInformation()
    except RuntimeError:  # the image itself was readable; a header without tags has nothing to give
        return {}
    found = {}
    for tag, label in PATIENT_TAGS.items():
        if reader.HasMetaDataKey(tag):
            value = reader.GetMetaData(tag).strip(" \x00")
            if value:
                found[label] = value
    return found
