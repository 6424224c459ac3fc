"""Augmentations move the ROI masks with the image and keep them binary and exclusive."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from BreastSubtypeTraining.augment import AugmentedDataset, training_augmentation

SIZE = 32


def _sphere_item() -> dict:
    """An off-centre bright sphere (radius 7 voxels) with matching core (r<5), rim (5-7), peritumoral (7-9)."""
    z, y, x = np.mgrid[:SIZE, :SIZE, :SIZE]
    r = np.sqrt((z - 14) ** 2 + (y - 12) ** 2 + (x - 19) ** 2)
    image = np.where(r < 7, 1.0, 0.2).astype(np.float32)
    core, rim, peri = r < 5, (r >= 5) & (r < 7), (r >= 7) & (r < 9)
    stacked = np.stack([image, core, rim, peri]).astype(np.float32)
    return {"image": torch.from_numpy(stacked), "case_id": "sphere"}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("seed", range(6))
def test_masks_stay_binary_exclusive_and_on_the_bright_sphere(seed):
    original = _sphere_item()
    augment = training_augmentation(seed=seed, flip_prob=0.5, rotate90_prob=0.5, affine_prob=1.0)
    result = augment(dict(original))
    image = result["image"]
    assert (
        type(image) is torch.Tensor and image.dtype == torch.float32 and image.shape == (4, SIZE, SIZE, SIZE)
    )
    masks = image[1:].numpy()
    assert set(np.unique(masks)) <= {0.0, 1.0}
    assert masks.sum(axis=0).max() <= 1.0  # core, rim and peritumoral never overlap
    tumour = (masks[0] + masks[1]) > 0
    intensity = image[0].numpy()
    bright = intensity > (np.median(intensity[tumour]) + np.median(intensity[~tumour])) / 2
    assert _dice(bright, tumour) > 0.9
    assert abs(int(tumour.sum()) - int((original["image"][1:3].sum(0) > 0).sum())) < 0.35 * tumour.sum()


def test_spatial_transforms_move_the_masks_with_the_image():
    original = _sphere_item()
    moved = 0
    for seed in range(4):
        result = training_augmentation(seed=seed, flip_prob=1.0, affine_prob=0.0, intensity_prob=0.0)(
            dict(original)
        )
        # Flips and 90° turns are exact: the masks are the image's sphere, voxel for voxel.
        tumour = (result["image"][1] + result["image"][2]) > 0
        assert torch.equal(tumour, result["image"][0] > 0.5)
        moved += not torch.equal(result["image"], original["image"])
    assert moved == 4  # the off-centre sphere really moved


def test_intensity_changes_leave_the_masks_untouched():
    original = _sphere_item()
    augment = training_augmentation(
        seed=1, flip_prob=0.0, rotate90_prob=0.0, affine_prob=0.0, intensity_prob=1.0
    )
    result = augment(dict(original))
    assert torch.equal(result["image"][1:], original["image"][1:])
    assert not torch.equal(result["image"][0], original["image"][0])


def test_same_seed_gives_the_same_augmentation():
    first = training_augmentation(seed=3)(_sphere_item())["image"]
    second = training_augmentation(seed=3)(_sphere_item())["image"]
    assert torch.equal(first, second)


class _Spheres:
    def __len__(self):
        return 3

    def __getitem__(self, index):
        return _sphere_item()


def test_augmented_dataset_draws_depend_only_on_seed_epoch_and_index():
    data = AugmentedDataset(_Spheres(), seed=5, affine_prob=1.0)
    epoch0 = [data[i]["image"] for i in range(3)]
    assert torch.equal(data[1]["image"], epoch0[1])  # the same (seed, epoch, index) again
    assert not torch.equal(epoch0[0], epoch0[1])  # another index, another draw
    data.set_epoch(1)
    assert not torch.equal(data[0]["image"], epoch0[0])
    resumed = AugmentedDataset(_Spheres(), seed=5, affine_prob=1.0)
    resumed.set_epoch(1)
    assert torch.equal(resumed[2]["image"], data[2]["image"])
