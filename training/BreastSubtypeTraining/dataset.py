"""Cases of a manifest as network inputs, each computed once and cached on disk.

A case's input is made by the same steps inference uses (``BreastSubtypeLib``): read image and
mask with their geometry, align the mask to the image grid, compute core/rim/peritumoral ROIs
(widths ``rim_mm``/``peri_mm`` from the preprocessing config), crop and normalise. The result is
cached in ``cache_dir`` as ``{case_id}.{key}.npz``, the key hashing the image and mask paths,
their sizes and modification times and the preprocessing config: change any and the case is
recomputed, otherwise it is read back. Writes are atomic, so an interrupted run resumes with the
cases it finished. Labels are not cached (relabelling a manifest costs nothing).

Bad cases: every case is attempted; then, by default, one ``BadInputError`` names every case that
failed and why (the good ones stay cached, so the rerun after fixing the manifest is quick).
With ``skip_bad_cases=True`` they are left out with a warning instead and listed in ``skipped``.

>>> data = CachedCropDataset(rows, PreprocessingConfig(), "cache")  # doctest: +SKIP
>>> item = data[0]; item["image"].shape, item["labels"]["er"], item["known"]["ki67_percent"]  # doctest: +SKIP
(torch.Size([4, 64, 64, 64]), tensor(1.), tensor(False))
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.atomic import atomic_path
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.model.config import PreprocessingConfig
from BreastSubtypeLib.progress import ProgressCallback, report
from BreastSubtypeTraining.manifest import ManifestRow

CACHE_VERSION = 1  # bump when what a cached file holds changes
LABEL_TASKS = ("er", "pr", "her2", "ki67_percent")


def case_rois(row: ManifestRow, rim_mm: float, peri_mm: float):
    """(image, RoiResult) of one case: its image and the core/rim/peritumoral labelmap on its grid."""
    from BreastSubtypeLib.imaging.alignment import align_mask_to_image
    from BreastSubtypeLib.imaging.io import read_image
    from BreastSubtypeLib.rois.regions import compute_rois

    image = read_image(row.image, what="image")
    mask = align_mask_to_image(read_image(row.mask, what="mask"), image, str(row.mask))
    return image, compute_rois(image, mask, rim_mm, peri_mm, mask_source=str(row.mask))


def file_signature(path: Path) -> list:
    """Size and modification time of a file, or of every file of a DICOM folder."""
    if path.is_dir():
        return sorted(
            [entry.name, entry.stat().st_size, entry.stat().st_mtime_ns] for entry in os.scandir(path)
        )
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def cache_key(row: ManifestRow, config: PreprocessingConfig) -> str:
    """Hash of what a case's model input depends on (files and preprocessing, not labels)."""
    description = {
        "version": CACHE_VERSION,
        "image": [str(row.image), file_signature(Path(row.image))],
        "mask": [str(row.mask), file_signature(Path(row.mask))],
        "preprocessing": config.to_dict(),
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]


def _compute(row: ManifestRow, config: PreprocessingConfig, target: Path) -> None:
    from BreastSubtypeLib.preprocessing.crop import prepare_model_input

    image, rois = case_rois(row, config.rim_mm, config.peri_mm)
    model_input = prepare_model_input(image, rois.labelmap, config, source=str(row.image))
    array = model_input.array
    reference = model_input.crop_reference
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            image=array[0].astype(np.float32),
            rois=(array[1:] > 0.5).astype(np.uint8),  # binary masks: a quarter of the bytes
            scalars=model_input.scalars.astype(np.float32),
            lesion_volume_ml=np.float64(model_input.lesion_volume_ml),
            crop_spacing_mm=np.float64(model_input.crop_spacing_mm),
            crop_origin=np.asarray(reference.GetOrigin()),
            crop_direction=np.asarray(reference.GetDirection()),
        )


class CachedCropDataset:
    """Map-style dataset (usable with ``torch.utils.data.DataLoader``) of cached model inputs.

    ``dataset[i]`` is ``{"image": float32 (4, D, H, W), "scalars": float32 (n,), "labels": {task:
    float32 scalar, NaN if unknown}, "known": {task: bool scalar}, "case_id": str}`` with tasks
    er, pr, her2 (0/1) and ki67_percent.
    """

    def __init__(
        self,
        rows: Sequence[ManifestRow],
        preprocessing_config: PreprocessingConfig | None,
        cache_dir: str | os.PathLike,
        *,
        progress: ProgressCallback | None = None,
        skip_bad_cases: bool = False,
    ) -> None:
        self.config = preprocessing_config or PreprocessingConfig()
        self.cache_dir = Path(cache_dir)
        self.skipped: dict[str, str] = {}
        self.rows: list[ManifestRow] = []
        self._files: list[Path] = []
        for index, row in enumerate(rows):
            report(progress, index / max(len(rows), 1), f"preprocessing {row.case_id}")
            target = self.cache_dir / f"{row.case_id}.{cache_key(row, self.config)}.npz"
            if not target.is_file():
                try:
                    _compute(row, self.config, target)
                except BadInputError as exc:
                    self.skipped[row.case_id] = " ".join(str(exc).split())
                    continue
            self.rows.append(row)
            self._files.append(target)
        report(progress, 1.0, "preprocessing done")
        if self.skipped:
            listing = "; ".join(f"case {case}: {why}" for case, why in self.skipped.items())
            if not skip_bad_cases:
                raise BadInputError(f"{len(self.skipped)} case(s) cannot be used: {listing}")
            warnings.warn(f"Left out {len(self.skipped)} case(s): {listing}", stacklevel=2)

    def __len__(self) -> int:
        return len(self.rows)

    def arrays(self, index: int) -> dict[str, np.ndarray]:
        """The cached arrays of one case (image, rois, scalars, crop geometry)."""
        with np.load(self._files[index]) as data:
            return {name: data[name] for name in data.files}

    def crop_reference(self, index: int) -> sitk.Image:
        """An empty image with the geometry of the case's crop grid (to map outputs back)."""
        data = self.arrays(index)
        size = data["image"].shape[::-1]
        reference = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
        reference.SetSpacing([float(data["crop_spacing_mm"])] * 3)
        reference.SetOrigin(data["crop_origin"].tolist())
        reference.SetDirection(data["crop_direction"].tolist())
        return reference

    def __getitem__(self, index: int) -> dict:
        import torch

        data = self.arrays(index)
        image = np.concatenate([data["image"][None], data["rois"].astype(np.float32)], axis=0)
        labels = self.rows[index].labels
        values = {task: np.nan if labels[task] is None else float(labels[task]) for task in LABEL_TASKS}
        return {
            "image": torch.from_numpy(image),
            "scalars": torch.from_numpy(data["scalars"]),
            "labels": {task: torch.tensor(value, dtype=torch.float32) for task, value in values.items()},
            "known": {task: torch.tensor(labels[task] is not None) for task in LABEL_TASKS},
            "case_id": self.rows[index].case_id,
        }
