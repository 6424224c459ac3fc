"""One case's output folder (SPEC §6): prediction.json, rois.nrrd, attention.nrrd and the other
maps, PNG overlays and report.html. The folder appears complete or not at all (it is written
beside the target and renamed), which is what lets a cohort run resume safely.

Maps are written on the input's exact grid (Slicer overlays them as they are) as 8-bit values:
map value = stored value × ``MAP_VALUE_SCALE`` (1/255), so they round-trip within 1/510 and are a
quarter of float32 to read. prediction.json says so under ``"maps"``, and each file carries the
scale in its header (``value_scale``). Only a map's non-zero box is compressed (``sparse_nrrd``).

>>> summary = write_case_outputs(prediction, "out/case_001")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.atomic import atomic_directory
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.imaging.geometry import bounding_box_index

MAP_VALUE_SCALE = 1.0 / 255.0
# Whole volumes (the ROI labelmap, the demo's inputs) go through ITK's NRRD writer (zlib-ng). A uint8
# volume of the 512x512x160 reference grid, measured on 2 cores: gzip level 1 writes in 33 ms
# (1.5 MB), level 6 in 82 ms (1.5 MB), uncompressed 47 ms (42 MB): level 1.
VOLUME_COMPRESSION_LEVEL = 1
FUSED_ATTENTION = "attention_fused"


def map_file_name(name: str) -> str:
    """``attention_fused`` is the one users open first, so it is plainly ``attention.nrrd``."""
    return "attention.nrrd" if name == FUSED_ATTENTION else f"{name}.nrrd"


def map_value_scale(summary: dict) -> float:
    """What one stored unit of a case's map files is worth (1.0 for folders written as float32)."""
    return float((summary.get("maps") or {}).get("value_scale", 1.0))


def map_values(stored: sitk.Image, value_scale: float) -> sitk.Image:
    """A map file's image as float32 values in [0, 1], whichever way it was stored."""
    values = sitk.Cast(stored, sitk.sitkFloat32)
    return values if value_scale == 1.0 else values * value_scale


def quantise_map(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] → uint8 with ``value = stored × MAP_VALUE_SCALE`` (nearest step)."""
    return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def _strip_metadata(image: sitk.Image) -> sitk.Image:
    """A copy without the metadata dictionary, so no DICOM tag rides along into an output header."""
    if not image.GetMetaDataKeys():
        return image
    clean = sitk.Image(image)
    for key in clean.GetMetaDataKeys():
        clean.EraseMetaData(key)
    return clean


def write_volume(image: sitk.Image, path: Path) -> None:
    """An input-grid volume other than a map (ROI labels, the demo's inputs), without the input's tags."""
    writer = sitk.ImageFileWriter()
    writer.SetFileName(str(path))
    writer.SetUseCompression(True)
    writer.SetCompressionLevel(VOLUME_COMPRESSION_LEVEL)
    writer.Execute(_strip_metadata(image))


def _write_maps(maps, names: list[str], image: sitk.Image, folder: Path) -> None:
    """Write ``names`` of ``maps`` as 8-bit files on the input grid, each at the cost of its non-zero box.

    Only the crop's box of the input grid can be non-zero, so only that box is quantised and
    compressed (``sparse_nrrd``); the rest of the grid is never built.
    """
    from BreastSubtypeLib.inference.sparse_nrrd import write_sparse_nrrd

    header = {"value_scale": repr(MAP_VALUE_SCALE)}
    for name in names:
        path = folder / map_file_name(name)
        if not hasattr(maps, "on_input_box"):  # a plain {name: float image on the input grid}
            values = quantise_map(sitk.GetArrayViewFromImage(maps[name]))
            write_sparse_nrrd(path, values, (0, 0, 0), image, header)
            continue
        found = maps.on_input_box(name)
        if found is None:  # the crop lies outside the image: an all-zero map
            write_sparse_nrrd(path, np.zeros((0, 0, 0), np.uint8), (0, 0, 0), image, header)
            continue
        box, lower = found
        write_sparse_nrrd(path, quantise_map(sitk.GetArrayViewFromImage(box)), lower, image, header)


def _write_rois(labelmap: sitk.Image, labels: np.ndarray, roi_box, path: Path) -> None:
    """rois.nrrd: like a map, only the ROI's box is compressed (a uint8 labelmap, as ROIs always are)."""
    from BreastSubtypeLib.inference.sparse_nrrd import write_sparse_nrrd

    if labelmap.GetPixelID() != sitk.sitkUInt8:
        write_volume(labelmap, path)
        return
    lower_ijk = tuple(part.start for part in reversed(roi_box))
    write_sparse_nrrd(path, labels[roi_box], lower_ijk, labelmap)


def maps_summary(names) -> dict:
    """prediction.json's ``"maps"``: the files and how to read their values."""
    return {
        "files": {name: map_file_name(name) for name in names},
        "stored_as": "uint8",
        "value_scale": MAP_VALUE_SCALE,
        "meaning": "map value in [0, 1] = stored value x value_scale, on the input image's grid",
    }


def check_output_folder(out_dir: str | os.PathLike) -> Path:
    """Refuse to replace a folder that is not a case folder: ``--out ~`` must never wipe a home folder."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (
        not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / "prediction.json").is_file())
    ):
        raise BadInputError(
            f"The output folder {out_dir} already exists and is not a BreastSubtype case folder; choose a new folder."
        )
    return out_dir


def write_case_outputs(
    prediction,
    out_dir: str | os.PathLike,
    *,
    patient_info: dict[str, str] | None = None,
    extra_images: dict[str, sitk.Image] | None = None,
    writer_threads: int = 2,
) -> dict:
    """Write every output of ``prediction`` into ``out_dir`` (replaced whole); return prediction.json's content.

    ``patient_info`` (``inference.patient_info.read_patient_info``, read only when the user asks) is
    written to prediction.json when given and not empty. ``extra_images`` ({file name: image}) join
    the folder (the demo's inputs).
    """
    from BreastSubtypeLib.reports.html import render_report
    from BreastSubtypeLib.reports.overlays import overlay_framing, render_overlays

    maps = prediction.maps
    names = list(maps)
    summary = prediction.summary()
    summary["maps"] = maps_summary(names)
    if patient_info:
        summary["patient"] = dict(patient_info)
    out_dir = check_output_folder(out_dir)
    labelmap = prediction.roi.labelmap
    # Views of the labelmap before a writer holds it (SimpleITK would copy it for a view meanwhile).
    labels = sitk.GetArrayViewFromImage(labelmap)
    roi_box = bounding_box_index(labels, 0.0, labelmap.GetSpacing())
    framing = overlay_framing(labelmap, roi_box)
    with atomic_directory(out_dir) as tmp:
        # ITK's writers and zlib release the GIL: the volumes are written while this thread draws the
        # overlays and the report.
        with ThreadPoolExecutor(max_workers=max(1, writer_threads), thread_name_prefix="map-writer") as pool:
            writes = [pool.submit(_write_rois, labelmap, labels, roi_box, tmp / "rois.nrrd")]
            shares = [names[start :: max(1, writer_threads)] for start in range(max(1, writer_threads))]
            writes += [
                pool.submit(_write_maps, maps, share, prediction.image, tmp) for share in shares if share
            ]
            writes += [
                pool.submit(write_volume, image, tmp / name) for name, image in (extra_images or {}).items()
            ]
            # Planes are sampled in physical space, so the small crop-grid map draws the same overlay.
            heatmap = None
            if FUSED_ATTENTION in maps:
                heatmap = (
                    maps.on_crop_grid(FUSED_ATTENTION)
                    if hasattr(maps, "on_crop_grid")
                    else maps[FUSED_ATTENTION]
                )
            overlays = render_overlays(prediction.image, labelmap, heatmap, framing=framing)
            for view, png in overlays.items():
                (tmp / f"overlay_{view}.png").write_bytes(png)
            (tmp / "report.html").write_text(
                render_report(summary, overlays, prediction.model_card), encoding="utf-8"
            )
            (tmp / "prediction.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
            for write in writes:
                write.result()
    return summary
