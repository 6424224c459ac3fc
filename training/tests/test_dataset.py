"""The cached-crop dataset: the same model input as inference, computed once, labels masked."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.model.config import SCALAR_FEATURES, PreprocessingConfig
from BreastSubtypeLib.preprocessing.case import prepare_case, read_case
from BreastSubtypeTraining.dataset import CachedCropDataset

CONFIG = PreprocessingConfig(crop_size_voxels=(32, 32, 32), target_spacing_mm=1.5)


@pytest.fixture(scope="module")
def cached(phantom_rows, tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("crop_cache")
    return CachedCropDataset(phantom_rows[:4], CONFIG, cache_dir), cache_dir


def test_items_hold_the_model_input_scalars_and_labels(cached, phantom_rows):
    dataset, _ = cached
    assert len(dataset) == 4
    item = dataset[0]
    row = phantom_rows[0]
    assert item["case_id"] == row.case_id
    assert item["image"].dtype == torch.float32 and item["image"].shape == (4, 32, 32, 32)
    assert item["scalars"].shape == (len(SCALAR_FEATURES),)
    masks = item["image"][1:]
    assert set(torch.unique(masks).tolist()) <= {0.0, 1.0} and masks.sum(0).max() == 1.0
    assert masks[0].sum() > 0 and masks[1].sum() > 0 and masks[2].sum() > 0  # core, rim, peritumoral
    assert item["labels"]["er"].item() == row.er and item["labels"]["ki67_percent"].item() == pytest.approx(
        row.ki67_percent
    )
    assert all(item["known"][task].item() for task in ("er", "pr", "her2", "ki67_percent"))


def test_crop_keeps_physical_size_tumour_volume_matches_the_rois_in_ml(cached, phantom_rows):
    dataset, _ = cached
    for index in range(len(dataset)):
        data = dataset.arrays(index)
        row = phantom_rows[index]
        tumour_ml = prepare_case(read_case(row.image, row.mask), CONFIG).roi.volumes_ml["tumour"]
        crop_ml = data["rois"][:2].sum() * float(data["crop_spacing_mm"]) ** 3 / 1000.0
        assert crop_ml == pytest.approx(tumour_ml, rel=0.15)
        assert math.log1p(float(data["lesion_volume_ml"])) == pytest.approx(
            float(data["scalars"][0]), rel=1e-5
        )


def test_a_second_dataset_reads_the_cache_instead_of_recomputing(cached, phantom_rows):
    dataset, cache_dir = cached
    files = sorted(cache_dir.glob("*.npz"))
    stamps = [f.stat().st_mtime_ns for f in files]
    again = CachedCropDataset(phantom_rows[:4], CONFIG, cache_dir)
    assert sorted(cache_dir.glob("*.npz")) == files and [f.stat().st_mtime_ns for f in files] == stamps
    assert torch.equal(again[2]["image"], dataset[2]["image"])


def test_a_changed_image_or_config_gets_a_new_cache_entry(phantom_rows, tmp_path):
    rows = phantom_rows[:1]
    CachedCropDataset(rows, CONFIG, tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    CachedCropDataset(rows, dataclasses.replace(CONFIG, peri_mm=4.0), tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    stat = rows[0].image.stat()
    os.utime(rows[0].image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        CachedCropDataset(rows, CONFIG, tmp_path)
    finally:
        os.utime(rows[0].image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert len(list(tmp_path.glob("*.npz"))) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_missing_labels_are_nan_and_marked_unknown(phantom_rows, tmp_path):
    row = dataclasses.replace(phantom_rows[0], pr=None, ki67_percent=None)
    item = CachedCropDataset([row], CONFIG, tmp_path)[0]
    assert math.isnan(item["labels"]["pr"].item()) and not item["known"]["pr"].item()
    assert math.isnan(item["labels"]["ki67_percent"].item()) and not item["known"]["ki67_percent"].item()
    assert item["known"]["er"].item() and item["labels"]["er"].item() == row.er


def _empty_mask_row(row, tmp_path):
    mask = sitk.ReadImage(str(row.mask))
    empty = sitk.Image(mask.GetSize(), mask.GetPixelID())
    empty.CopyInformation(mask)
    path = tmp_path / "empty_mask.nii.gz"
    sitk.WriteImage(empty, str(path))
    return dataclasses.replace(row, case_id="bad_case", mask=path)


def test_bad_cases_are_all_named_in_one_error_after_the_good_ones_are_cached(phantom_rows, tmp_path):
    bad = _empty_mask_row(phantom_rows[1], tmp_path)
    with pytest.raises(
        BadInputError, match=r"1 case\(s\) cannot be used: case bad_case: .*empty_mask.nii.gz"
    ):
        CachedCropDataset([phantom_rows[0], bad], CONFIG, tmp_path / "cache")
    assert [p.name.split(".")[0] for p in (tmp_path / "cache").glob("*.npz")] == [phantom_rows[0].case_id]


def test_bad_cases_can_be_skipped_with_a_warning(phantom_rows, tmp_path):
    bad = _empty_mask_row(phantom_rows[1], tmp_path)
    with pytest.warns(UserWarning, match="Left out 1 case"):
        dataset = CachedCropDataset([phantom_rows[0], bad], CONFIG, tmp_path / "cache", skip_bad_cases=True)
    assert len(dataset) == 1 and list(dataset.skipped) == ["bad_case"]


def test_batches_collate_with_a_dataloader(cached):
    from torch.utils.data import DataLoader

    dataset, _ = cached
    batch = next(iter(DataLoader(dataset, batch_size=3, shuffle=False)))
    assert batch["image"].shape == (3, 4, 32, 32, 32)
    assert batch["labels"]["her2"].shape == (3,) and batch["known"]["her2"].dtype == torch.bool
    assert batch["case_id"] == [r.case_id for r in dataset.rows[:3]]


def test_crop_reference_geometry_puts_the_tumour_where_the_image_has_it(cached, phantom_rows):
    dataset, _ = cached
    reference = dataset.crop_reference(0)
    data = dataset.arrays(0)
    mask = sitk.ReadImage(str(phantom_rows[0].mask))
    tumour_kji = np.argwhere(data["rois"][:2].sum(0) > 0).mean(axis=0)
    centre_crop = reference.TransformContinuousIndexToPhysicalPoint(tumour_kji[::-1].tolist())
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.Execute(sitk.Cast(mask > 0, sitk.sitkUInt8))
    assert np.allclose(centre_crop, shape.GetCentroid(1), atol=2.0)  # mm


def test_augmented_cached_items_keep_binary_masks_and_collate(cached):
    from torch.utils.data import DataLoader

    from BreastSubtypeTraining.augment import AugmentedDataset

    dataset, _ = cached
    augmented = AugmentedDataset(dataset, seed=1, affine_prob=1.0)
    batch = next(iter(DataLoader(augmented, batch_size=4, shuffle=False)))
    assert batch["image"].shape == (4, 4, 32, 32, 32)
    masks = batch["image"][:, 1:]
    assert set(torch.unique(masks).tolist()) <= {0.0, 1.0} and masks.sum(1).max() <= 1.0
    assert torch.equal(batch["labels"]["er"], torch.tensor([float(r.er) for r in dataset.rows[:4]]))
    assert augmented.rows == dataset.rows
