"""Reading and writing images with their geometry (any format SimpleITK reads, DICOM series folders).

>>> image = read_image("case/post1.nii.gz")  # doctest: +SKIP
>>> write_image(image, "out/copy.nrrd")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import SimpleITK as sitk

from BreastSubtypeLib.atomic import atomic_path
from BreastSubtypeLib.errors import BadInputError

# Refuse before allocating: a volume this large cannot be processed within the memory budget (SPEC §11).
MAX_VOXELS = 1_500_000_000


def list_dicom_series(folder: str | os.PathLike) -> list[str]:
    """Series instance UIDs of the DICOM series in ``folder`` (not recursive)."""
    return list(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)))


def _check_header_size(size: tuple[int, ...], path: Path, what: str) -> None:
    voxels = 1
    for extent in size:
        voxels *= int(extent)
    if voxels > MAX_VOXELS:
        raise BadInputError(
            f"The {what} {path} has {voxels:,} voxels, more than the {MAX_VOXELS:,} this tool can process; "
            "crop or downsample it first."
        )


def _read_dicom_folder(folder: Path, series_uid: str | None, what: str) -> sitk.Image:
    series = list_dicom_series(folder)
    if not series:
        raise BadInputError(f"The {what} folder {folder} holds no DICOM series SimpleITK can read.")
    if series_uid is None:
        if len(series) > 1:
            raise BadInputError(
                f"The {what} folder {folder} holds {len(series)} DICOM series ({', '.join(series)}); "
                "choose one with series_uid."
            )
        series_uid = series[0]
    elif series_uid not in series:
        raise BadInputError(
            f"The {what} folder {folder} has no DICOM series {series_uid} (it has {', '.join(series)})."
        )
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series_uid)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    # Patient tags stay out of the image (SPEC §12: nothing of the patient reaches our outputs).
    reader.MetaDataDictionaryArrayUpdateOff()
    try:
        return reader.Execute()
    except RuntimeError as exc:
        raise BadInputError(
            f"The {what} DICOM series {series_uid} in {folder} cannot be read: {_first_line(exc)}."
        ) from None


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # ITK messages end with the useful description; keep it short.
    return (lines[-1] if lines else type(exc).__name__).rstrip(".")


def read_image(path: str | os.PathLike, *, series_uid: str | None = None, what: str = "image") -> sitk.Image:
    """Read an image file or a DICOM series folder, keeping spacing, origin and direction.

    ``what`` names the input in error messages ("image", "mask"). The voxel count is checked from the
    header before any pixel is loaded.
    """
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"The {what} {path} does not exist.")
    if path.is_dir():
        return _read_dicom_folder(path, series_uid, what)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise BadInputError(f"The {what} {path} is not an image file SimpleITK can read.") from None
    _check_header_size(reader.GetSize(), path, what)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise BadInputError(f"The {what} {path} cannot be read: {_first_line(exc)}.") from None
    _drop_patient_tags(image)
    return image


def _drop_patient_tags(image: sitk.Image) -> None:
    # A single DICOM file carries its tags ("0010|0010" = patient name) in the metadata dictionary,
    # which writers would copy into outputs.
    for key in image.GetMetaDataKeys():
        if "|" in key:
            image.EraseMetaData(key)


def write_image(image: sitk.Image, path: str | os.PathLike, *, compress: bool = True) -> Path:
    """Write ``image`` atomically (temporary file, then rename); the format follows the extension."""
    path = Path(path)
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=compress)
    return path
