"""Training augmentations (MONAI dictionary transforms) that keep the ROI channels on the image.

The model input is one tensor ``(4, D, H, W)``: the post-contrast intensities, then the core, rim
and peritumoral masks (``BreastSubtypeLib.model.config.INPUT_CHANNELS``). The pipeline splits it into
its channels, applies every spatial transform to all of them with ONE random draw (so the masks
move with the tissue), resamples intensities linearly but masks with nearest neighbour (so they
stay binary and exclusive), changes intensities on the image channel only, and joins the channels
again. Geometry of the crop is unchanged: the same voxel grid goes in and comes out.

>>> augment = training_augmentation(seed=0)  # doctest: +SKIP
>>> item = augment({"image": item_tensor, "case_id": "case_000"})  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from BreastSubtypeLib.model.config import INPUT_CHANNELS

IMAGE_KEY = "image"
_CHANNEL_KEYS = tuple(f"{IMAGE_KEY}_{name}" for name in INPUT_CHANNELS)
_INTENSITY_KEY, _ROI_KEYS = _CHANNEL_KEYS[0], _CHANNEL_KEYS[1:]


def training_augmentation(
    *,
    seed: int | None = None,
    crop_size_voxels: Sequence[int] | None = None,
    flip_prob: float = 0.5,
    rotate90_prob: float = 0.5,
    affine_prob: float = 0.3,
    rotate_degrees: float = 10.0,
    scale_fraction: float = 0.1,
    translate_voxels: float = 3.0,
    intensity_prob: float = 0.5,
    intensity_scale_fraction: float = 0.1,
    intensity_shift: float = 0.1,
    noise_std: float = 0.02,
) -> object:
    """A ``monai.transforms.Compose`` for dict items whose ``"image"`` is the 4-channel model input.

    Flips along each in-plane axis, 90° turns in the axial plane (only when that plane is square,
    ``crop_size_voxels`` (z, y, x) tells; unknown means square), and a small random affine
    (rotation, scale, translation) move all channels; scale, shift and Gaussian noise (in units
    of the normalised intensity) touch the image channel only.
    """
    from monai.transforms import (
        Compose,
        ConcatItemsd,
        DeleteItemsd,
        EnsureTyped,
        RandAffined,
        RandFlipd,
        RandGaussianNoised,
        RandRotate90d,
        RandScaleIntensityd,
        RandShiftIntensityd,
        SplitDimd,
    )

    keys = list(_CHANNEL_KEYS)
    modes = ["bilinear"] + ["nearest"] * len(_ROI_KEYS)
    # Outside the crop: the nearest tissue for intensities, nothing for the masks.
    padding = ["border"] + ["zeros"] * len(_ROI_KEYS)
    spatial = [
        # Array axes are (channel, z, y, x); MONAI's spatial axes skip the channel: 1 = y, 2 = x.
        RandFlipd(keys, prob=flip_prob, spatial_axis=2),
        RandFlipd(keys, prob=flip_prob, spatial_axis=1),
    ]
    if crop_size_voxels is None or crop_size_voxels[1] == crop_size_voxels[2]:
        spatial.append(RandRotate90d(keys, prob=rotate90_prob, max_k=3, spatial_axes=(1, 2)))
    angle = math.radians(rotate_degrees)
    spatial.append(
        RandAffined(
            keys,
            prob=affine_prob,
            rotate_range=(angle, angle, angle),
            scale_range=(scale_fraction,) * 3,
            translate_range=(translate_voxels,) * 3,
            mode=modes,
            padding_mode=padding,
        )
    )
    intensity = [
        RandScaleIntensityd(_INTENSITY_KEY, factors=intensity_scale_fraction, prob=intensity_prob),
        RandShiftIntensityd(_INTENSITY_KEY, offsets=intensity_shift, prob=intensity_prob),
        RandGaussianNoised(_INTENSITY_KEY, prob=intensity_prob, std=noise_std),
    ]
    pipeline = Compose(
        [
            SplitDimd(IMAGE_KEY, output_postfixes=list(INPUT_CHANNELS), dim=0, keepdim=True),
            *spatial,
            *intensity,
            ConcatItemsd(keys, name=IMAGE_KEY, dim=0),
            DeleteItemsd(keys),
            # A plain float32 tensor again, like the cached items, so batches collate the same way.
            EnsureTyped(IMAGE_KEY, data_type="tensor", dtype=_float32(), track_meta=False),
        ]
    )
    if seed is not None:
        pipeline.set_random_state(seed=seed)
    return pipeline


def _float32():
    import torch

    return torch.float32


class AugmentedDataset:
    """A dataset's items augmented, the random draw a pure function of (seed, epoch, index).

    So a run resumed at epoch ``e`` sees the same augmented batches as an uninterrupted one, and
    DataLoader workers need no seeding of their own. Call ``set_epoch`` at the start of each epoch.
    """

    def __init__(self, dataset, *, seed: int = 0, **augmentation) -> None:
        self.dataset = dataset
        self.seed = int(seed)
        self.epoch = 0
        config = getattr(dataset, "config", None)
        augmentation.setdefault("crop_size_voxels", getattr(config, "crop_size_voxels", None))
        self.transform = training_augmentation(**augmentation)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        draw = (self.seed * 1_000_003 + self.epoch * 100_003 + int(index)) % (2**32)
        self.transform.set_random_state(seed=draw)
        return self.transform(dict(self.dataset[index]))

    def __getattr__(self, name: str):
        # rows, skipped, crop_reference(...) of the wrapped dataset stay reachable.
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
