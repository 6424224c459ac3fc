"""Cases of a manifest as network inputs, each computed once and cached on disk; their loaders.

A case's input is made by THE case pipeline of inference (``BreastSubtypeLib.preprocessing.case``:
read with geometry, validate, align, core/rim/peritumoral ROIs at the preprocessing config's
widths, lesion checks, crop and normalise), so training accepts exactly the cases ``predict``
accepts and computes the same numbers. The result is cached in ``cache_dir`` as
``{case_id}.{key}.npz``, the key hashing the image and mask paths, their sizes and modification
times and the preprocessing config: change any and the case is recomputed, otherwise it is read
back (a cached case passed the checks). Writes are atomic, so an interrupted run resumes with the
cases it finished. Labels are not cached (relabelling a manifest costs nothing).

Bad cases: every case is attempted; then, by default, one ``BadCasesError`` names every case that
failed and why, one line each (the good ones stay cached, so the rerun after fixing the manifest
is quick). With ``skip_bad_cases=True`` they are left out with a warning instead and listed in
``skipped``.

>>> data = CachedCropDataset(rows, PreprocessingConfig(), "cache")  # doctest: +SKIP
>>> item = data[0]; item["image"].shape, item["labels"]["er"], item["known"]["ki67_percent"]  # doctest: +SKIP
(torch.Size([4, 64, 64, 64]), tensor(1.), tensor(False))
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.atomic import atomic_path
from BreastSubtypeLib.errors import BadCasesError, BadInputError
from BreastSubtypeLib.model.config import PreprocessingConfig
from BreastSubtypeLib.preprocessing.case import prepare_case, read_case
from BreastSubtypeLib.progress import ProgressCallback, report
from BreastSubtypeLib.tasks import LABELS
from BreastSubtypeTraining.augment import AugmentedDataset
from BreastSubtypeTraining.manifest import ManifestRow

# Bump when what a cached file holds changes. 2: cases pass predict's checks (validation, lesion size);
# 3: scalars carry the margin profile; 4: the profile's four contrasts, and the ROIs of images stored
# with a negative offset; 5: the band's entropy; 6: the profile texture and the near drop; 7: the near
# drop's sectors that a flip or permutation of the storage axes only relabels; 8: the band's roughness;
# 9: the band's homogeneity; 10: the band's amplitude (25th, before the homogeneity and roughness);
# 11: the tumour's signal over its rim's (26th).
CACHE_VERSION = 11


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
    model_input = prepare_case(read_case(row.image, row.mask), config).model_input
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
                    self.skipped[row.case_id] = str(exc)
                    continue
            self.rows.append(row)
            self._files.append(target)
        report(progress, 1.0, "preprocessing done")
        if self.skipped:
            if not skip_bad_cases:
                raise BadCasesError(self.skipped, "fix or remove them in the manifest")
            listing = "; ".join(f"case {case}: {why}" for case, why in self.skipped.items())
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
        values = {task: np.nan if labels[task] is None else float(labels[task]) for task in LABELS}
        return {
            "image": torch.from_numpy(image),
            "scalars": torch.from_numpy(data["scalars"]),
            "labels": {task: torch.tensor(value, dtype=torch.float32) for task, value in values.items()},
            "known": {task: torch.tensor(labels[task] is not None) for task in LABELS},
            "case_id": self.rows[index].case_id,
        }


def make_dataset(
    rows: Sequence[ManifestRow],
    preprocessing_config: PreprocessingConfig,
    cache_dir: str | os.PathLike,
    *,
    progress: ProgressCallback | None = None,
    augment: bool = False,
    seed: int = 0,
    augmentation: dict | None = None,
):
    """The cached-crop dataset of ``rows``, with mask-preserving augmentation when ``augment``."""
    dataset = CachedCropDataset(list(rows), preprocessing_config, Path(cache_dir), progress=progress)
    if augment:
        dataset = AugmentedDataset(dataset, seed=seed, **(augmentation or {}))
    return dataset


def make_loader(
    dataset, batch_size: int, *, shuffle: bool, sampler=None, num_workers: int = 0, seed: int = 0
):
    """A DataLoader whose shuffling is a pure function of ``seed``."""
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        generator=generator,
        drop_last=False,
    )


def batch_to_device(batch: Mapping, device):
    """(image, scalars, labels, known) tensors on ``device`` from a collated batch of items."""
    image = batch["image"].to(device, non_blocking=True).float()
    scalars = batch["scalars"].to(device, non_blocking=True).float()
    labels = {task: batch["labels"][task].to(device).float() for task in LABELS}
    known = {task: batch["known"][task].to(device).bool() for task in LABELS}
    return image, scalars, labels, known
