"""Building blocks of the spatial multi-task network (torch only; imported by the model path).

Activations are never in-place: several task heads back-propagate through one shared trunk, and
Grad-CAM hooks read the trunk's activations, both of which an in-place ReLU would corrupt.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Conv3d(nn.Conv3d):
    """``nn.Conv3d`` that always takes oneDNN (mkldnn) on the CPU.

    PyTorch's heuristic sends small batch-1 3-D convolutions (C·D·H ≤ 20480: most of this network
    at inference) to its im2col ``slow_conv3d``, 2-4× slower than oneDNN here. Same weights, same
    results (to float rounding), autograd included; GPUs and other dtypes take the normal path.
    """

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        if (
            input.device.type == "cpu"
            and input.dtype == torch.float32
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
            and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled
        ):
            return torch.ops.aten.mkldnn_convolution(
                input.contiguous(),
                weight,
                bias,
                list(self.padding),
                list(self.stride),
                list(self.dilation),
                self.groups,
            )
        return super()._conv_forward(input, weight, bias)


def _count_mkldnn_convolution_flops() -> None:
    """Let ``FlopCounterMode`` count the oneDNN convolutions (2 FLOPs per multiply-add)."""
    from torch.utils.flop_counter import flop_registry, register_flop_formula

    op = torch.ops.aten.mkldnn_convolution
    if op in flop_registry:
        return

    @register_flop_formula(op)
    def _flops(x_shape, w_shape, *args, out_shape=None, **kwargs) -> int:
        return 2 * math.prod(out_shape) * math.prod(w_shape[1:])


_count_mkldnn_convolution_flops()


def make_norm(kind: str, channels: int) -> nn.Module:
    """Instance norm by default: its statistics are per case, so training with the small batches 3-D
    crops allow (2-8) behaves like inference, and eval output never depends on the batch. BatchNorm
    with such batches has noisy statistics and a train/eval gap; GroupNorm is offered as a middle way.
    Instance norm is computed as GroupNorm with one channel per group (identical maths, a CPU kernel
    about 3× faster than ``InstanceNorm3d``'s reshaped batch norm)."""
    if kind == "instance":
        return nn.GroupNorm(channels, channels)
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise ValueError(f"unknown norm {kind!r}")


class ConvNormAct(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, norm: str, *, stride: int = 1, kernel: int = 3):
        super().__init__(
            Conv3d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
            make_norm(norm, out_channels),
            nn.LeakyReLU(0.01),
        )


class ResidualBlock(nn.Module):
    """Two 3×3×3 convolutions with an identity (or strided 1×1×1) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, *, stride: int = 1):
        super().__init__()
        self.conv1 = ConvNormAct(in_channels, out_channels, norm, stride=stride)
        self.conv2 = Conv3d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = make_norm(norm, out_channels)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and in_channels == out_channels
            else nn.Sequential(
                Conv3d(in_channels, out_channels, 1, stride=stride, bias=False),
                make_norm(norm, out_channels),
            )
        )
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm2(self.conv2(self.conv1(x))) + self.shortcut(x))


class ResidualExtractor(nn.Module):
    """3-D residual feature extractor: a stride-2 stem (no full-resolution stage, the costliest part
    of MONAI's ResNets), then one stage per width, each after the first halving the grid.

    Stage ``s`` runs at 1/2**(s+1) of the input size; its output is ``self.stage{s}``.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...], blocks: tuple[int, ...], norm: str):
        super().__init__()
        self.stem = ConvNormAct(in_channels, widths[0], norm, stride=2)
        self.n_stages = len(widths)
        previous = widths[0]
        for index, (width, count) in enumerate(zip(widths, blocks)):
            layers = [ResidualBlock(previous, width, norm, stride=1 if index == 0 else 2)]
            layers += [ResidualBlock(width, width, norm) for _ in range(count - 1)]
            setattr(self, f"stage{index}", nn.Sequential(*layers))
            previous = width

    def forward(self, x: torch.Tensor, support: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``support`` (B,1,D,H,W), optional: 1 where the network may read. Each stage's output is
        zeroed on the cells that hold no support voxel, after the stage (so a hook on the stage sees
        the activation, and its gradient is zero there)."""
        features = []
        x = self.stem(x)
        for index in range(self.n_stages):
            x = getattr(self, f"stage{index}")(x)
            if support is not None:
                x = x * F.adaptive_max_pool3d(support, x.shape[2:])
            features.append(x)
        return features


class SpatialAttention(nn.Module):
    """A sigmoid spatial map from one scale's features, conditioned on the ROI masks at that scale
    (so it can learn where core, rim and peritumoral tissue lie, not only what they look like)."""

    def __init__(self, channels: int, n_masks: int = 3, *, kernel: int = 3):
        super().__init__()
        hidden = max(channels // 4, 8)
        self.body = nn.Sequential(
            Conv3d(channels + n_masks, hidden, kernel, padding=kernel // 2),
            nn.LeakyReLU(0.01),
            Conv3d(hidden, 1, 1),
        )

    def forward(self, features: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(torch.cat([features, masks], dim=1)))


def within_mm(inside: torch.Tensor, spacing_mm: torch.Tensor, distance_mm: float) -> torch.Tensor:
    """(B,1,D,H,W) 0/1 mask of voxels within ``distance_mm`` (Euclidean) of any ``inside`` voxel, on
    isotropic voxels of ``spacing_mm`` (B,) mm. Exact squared distances by the separable minimum
    along each axis (Felzenszwalb & Huttenlocher's decomposition, brute force per line: crops are small).

    >>> inside = torch.zeros(1, 1, 1, 1, 9); inside[..., 4] = 1
    >>> within_mm(inside, torch.tensor([2.0]), 4.0).flatten().tolist()
    [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    """
    far = torch.finfo(torch.float32).max / 4
    squared = torch.where(inside[:, 0] > 0, 0.0, far).float()  # (B,D,H,W) in mm^2
    step2 = (spacing_mm.float() ** 2).view(-1, 1, 1, 1, 1)  # (B,.,.,n target,n source)
    for axis in (1, 2, 3):
        n = squared.shape[axis]
        index = torch.arange(n, device=squared.device, dtype=torch.float32)
        offsets = (index[:, None] - index[None, :]) ** 2  # (n target, n source)
        lines = squared.movedim(axis, -1).unsqueeze(-2)  # (B,.,.,1,n source)
        squared = (lines + offsets * step2).amin(-1).movedim(-1, axis)
    return (squared <= distance_mm**2).to(inside.dtype).unsqueeze(1)


def masks_at(masks: torch.Tensor, size: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """Region masks (B,3,D,H,W) averaged down to a feature grid: the fraction of each region per cell."""
    return masks if tuple(masks.shape[2:]) == tuple(size) else F.adaptive_avg_pool3d(masks, size)


def region_pool(features: torch.Tensor, attention: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Attention-weighted mean of features within each region: (B,C,d,h,w) → (B,R,C).

    An empty region gives zeros (its weight is masked out by the ROI weighting)."""
    weights = attention * masks  # (B,R,d,h,w)
    total = weights.flatten(2).sum(-1).clamp_min(1e-6)  # (B,R)
    pooled = torch.einsum("brdhw,bcdhw->brc", weights, features)
    return pooled / total.unsqueeze(-1)


class RoiWeighting(nn.Module):
    """Learned per-case weights of core, rim and peritumoral tissue (softmax over regions).

    Each region's descriptor gets a learned region embedding (so the scorer knows which region it
    scores), a content score is added to a learned per-region bias, regions that are absent in the
    case or hidden by the configuration are masked out, and the softmax weights pool the regions.
    """

    def __init__(self, in_features: int, out_features: int, n_regions: int = 3):
        super().__init__()
        self.project = nn.Linear(in_features, out_features)
        self.region_embedding = nn.Parameter(torch.zeros(n_regions, out_features))
        self.score = nn.Sequential(
            nn.Linear(out_features, out_features), nn.Tanh(), nn.Linear(out_features, 1)
        )
        self.region_bias = nn.Parameter(torch.zeros(n_regions))
        self.act = nn.LeakyReLU(0.01)

    def forward(
        self, descriptors: torch.Tensor, present: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """descriptors (B,R,F), present (B,R) bool → (pooled (B,out), weights (B,R), per-region
        hidden features (B,R,out), zero for absent regions)."""
        hidden = self.act(self.project(descriptors) + self.region_embedding)
        logits = self.score(hidden).squeeze(-1) + self.region_bias
        # A large negative (not -inf) keeps the softmax finite even if a case had no region at all.
        logits = logits.masked_fill(~present, -1e4)
        weights = torch.softmax(logits, dim=-1)
        return torch.einsum("br,brf->bf", weights, hidden), weights, hidden * present.unsqueeze(-1)


class ScalarStandardiser(nn.Module):
    """Per-case numbers → (x - mean) / SD with the training cases' mean and SD.

    The margin profile's numbers differ between cases by a few hundredths of the normalised intensity,
    while the crop's pooled features vary by ones: unstandardised, a linear layer under weight decay
    all but ignores them (a network given them learned HER2 no better than one without). The
    statistics are running averages over training batches (the first batches averaged equally, then
    an exponential average), stored with the weights, and used as they stand in training and
    inference alike, so a case's output never depends on the rest of its batch.
    """

    def __init__(self, n: int, momentum: float = 0.02, eps: float = 1e-6):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("var", torch.ones(n))
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self._update(x.detach().to(self.mean.dtype))
        return (x - self.mean.to(x.dtype)) / (self.var.to(x.dtype) + self.eps).sqrt()

    def _update(self, x: torch.Tensor) -> None:
        # Sums over the batch, and over every replica under DistributedDataParallel, so replicas keep
        # identical statistics (each rank calls forward equally often, so the collectives match).
        sums = torch.cat([x.new_tensor([x.shape[0]]), x.sum(0), (x * x).sum(0)])
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(sums)
        count, total, squares = sums[0], sums[1 : 1 + x.shape[1]], sums[1 + x.shape[1] :]
        if count < 2:  # one case says nothing about the spread
            return
        mean = total / count
        self.batches_seen += 1
        rate = max(self.momentum, 1.0 / float(self.batches_seen))
        self.mean.lerp_(mean, rate)
        self.var.lerp_((squares / count - mean * mean).clamp_min(0.0), rate)
