"""The spatial multi-task network (Zeng & Zhou 2026): ONE definition for training and inference.

Input: the model input crop (B, 4, D, H, W) = normalised post-contrast image + core, rim and
peritumoral masks (``config.INPUT_CHANNELS``), and per-case scalars (B, n) (``config.SCALAR_FEATURES``).

Pipeline: a shared 3-D residual extractor (stride-2 stem) → spatial attention maps at several scales
(sigmoid maps from the features, conditioned on the ROI masks at that scale) → at each of those
scales, attention-weighted pooling of the features within core, rim and peritumoral tissue → the
ROI weighting module (learned per-case softmax weights over the three regions) → a shared fusion
layer → one head per task.

Physical size: the crop's field of view adapts to the lesion (small lesions at fine spacing, large
ones zoomed out), so the crop alone no longer says how big the lesion is. The heads therefore also
receive ``log1p(lesion volume in mL)`` and ``log(crop spacing in mm)`` (the ``scalars`` input),
which restores the physical scale that radiologists and biology (size correlates with Ki-67) use.
They also receive the margin profile (``preprocessing.margin_profile``): intensity shells of a
millimetre across the tumour margin and three margin-shape ratios, measured on the acquired voxels,
because the crop's voxels blur the 0-2 mm band where the peritumoral signal lies. All these numbers
are standardised with the training cases' running mean and SD (``blocks.ScalarStandardiser``) and
held within ``scalar_limit_sd`` of it, and numbers that measure a region an ablation hides are
hidden with it.

Wide and deep (recipe 6): each logit is the deep path's (``out["deep_logits"]``) plus a linear read
of the standardised numbers (``scalar_skip``). Training holds Ki-67's deep-path logit small
(``TrainingConfig.deep_penalty``), so Ki-67 is read mainly linearly from the margin profile and size,
which a few hundred cases estimate stably; recipe 7 holds the receptors' deep paths lightly too.

Support (recipe 7, ``support_mm``): the image and every extractor stage's features are zeroed beyond
that distance from the visible ROIs (exact Euclidean distances on the stage-0 grid,
``blocks.within_mm``), so the convolutions cannot carry farther tissue into any output or heatmap.

Ki-67 is ``100 · sigmoid(z)``: a percentage is bounded to [0, 100], so the output can never be an
impossible value (softplus could exceed 100), and the MSE on the percent scale stays well-behaved.
Its bias starts at 20 % (near the cohort median) so early training is not spent moving the offset.

Grad-CAM: ``network.cam_layer_name`` names the shared feature layer it is computed on
(``"branches.shared.extractor.stage0"`` for the default, ``NetworkConfig.cam_stage``); with per-task
extractors ``network.cam_layer_names[task]`` gives each task's layer and ``network.cam_layer(task)``
returns the module. Every task's output depends on that layer (through global pooling and the
coarsest attention scale), so its gradient is defined for each task. The global descriptor is pooled
over the cells the visible ROIs occupy (``global_pool="roi"``, recipe 5), so no pooling reads tissue
far from the lesion; the support bounds what the convolutions reach as well.

>>> import torch
>>> from BreastSubtypeLib.model.config import SCALAR_FEATURES, NetworkConfig
>>> net = SpatialMultiTaskNet(NetworkConfig()).eval()
>>> out = net(torch.zeros(1, 4, 64, 64, 64), torch.zeros(1, len(SCALAR_FEATURES)))
>>> sorted(out)
['attention', 'attention_fused', 'deep_logits', 'er', 'her2', 'ki67_percent', 'numbers', 'numbers_sd', 'pr', 'roi_weights', 'roi_weights_per_task']
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from BreastSubtypeLib.model.blocks import (
    Conv3d,
    ResidualExtractor,
    RoiWeighting,
    ScalarStandardiser,
    SpatialAttention,
    masks_at,
    region_pool,
    within_mm,
)
from BreastSubtypeLib.model.config import (
    LOG_NUMBER_FLOOR,
    REGIONS,
    SCALAR_FEATURES,
    SIZE_FEATURES,
    TASK_OUTPUT_KEYS,
    NetworkConfig,
)
from BreastSubtypeLib.preprocessing.margin_profile import MARGIN_PROFILE_REGION

KI67_INITIAL_PERCENT = 20.0


class _Branch(nn.Module):
    """Extractor + spatial attention + region pooling: image crop → region descriptors."""

    def __init__(self, config: NetworkConfig, widths: tuple[int, ...]):
        super().__init__()
        self.mode = config.attention
        self.scales = config.attention_scales
        self.extractor = ResidualExtractor(config.in_channels, widths, config.blocks_per_stage, config.norm)
        attention_scales = {"multi": self.scales, "single": self.scales[:1], "none": ()}[self.mode]
        self.attention = nn.ModuleDict(
            {str(s): SpatialAttention(widths[s], len(REGIONS)) for s in attention_scales}
        )
        # Region means of instance-normalised features differ in scale from stage to stage; a layer
        # norm per scale puts fine (band) and coarse (shape) descriptors on one footing for the heads.
        self.descriptor_norm = nn.ModuleDict(
            {str(s): nn.LayerNorm(widths[s]) for s in self.scales} if config.descriptor_norm else {}
        )
        self.descriptor_features = sum(widths[s] for s in self.scales)
        # First-order intensity statistics of each region on the crop's own grid (mean, SD and the
        # mean excess over three levels of the normalised intensity): no weights to learn. An
        # experiment switch, off by default: the crop's voxels already blur the 0-2 mm band, which
        # is why the margin profile (measured on the acquired voxels) replaced it.
        self.statistics = config.intensity_statistics
        if self.statistics:
            self.descriptor_features += len(INTENSITY_LEVELS) + 2
        # Full-resolution intensity descriptors: the peritumoral signal fades within ~2 mm of the
        # tumour, finer than the extractor's first grid (2 crop voxels), so a pointwise-learned
        # intensity profile is pooled in each region on the crop's own grid with the exact masks.
        self.fine = None
        if config.fine_features:
            k = config.fine_features
            self.fine = nn.Sequential(
                Conv3d(1, k, 3, padding=1), nn.LeakyReLU(0.01), Conv3d(k, k, 1), nn.LeakyReLU(0.01)
            )
            self.fine_norm = nn.LayerNorm(k) if config.descriptor_norm else nn.Identity()
            # The finest attention scale: which band voxels matter (e.g. the first millimetres next
            # to the tumour, where the peritumoral signal lies) is learned from intensity and masks.
            # Pointwise: the fine features already see 3x3x3 neighbourhoods, and a 3x3x3 attention
            # on the full grid would cost more than the whole extractor.
            self.fine_attention = SpatialAttention(k, len(REGIONS), kernel=1) if self.mode != "none" else None
            self.descriptor_features += k
        self.global_features = widths[-1] if config.global_features else 0
        self.global_pool = config.global_pool

    def forward(self, x: torch.Tensor, masks: torch.Tensor, support: torch.Tensor | None = None):
        features = self.extractor(x, support)
        maps, pooled = [], []
        for scale in self.scales:
            f = features[scale]
            m = masks_at(masks, f.shape[2:])
            if str(scale) in self.attention:
                a = self.attention[str(scale)](f, m)
                maps.append(a)
            elif maps:  # single-scale attention: the one map, averaged onto the coarser grids
                a = F.adaptive_avg_pool3d(maps[0], f.shape[2:])
            else:  # no attention: plain region means
                a = torch.ones_like(f[:, :1])
            descriptors = region_pool(f, a, m)
            if self.descriptor_norm:
                descriptors = self.descriptor_norm[str(scale)](descriptors)
            pooled.append(descriptors)
        if self.statistics:
            pooled.append(region_intensity_statistics(x[:, :1], masks))
        if self.fine is not None:
            fine = self.fine(x[:, :1])
            if self.fine_attention is not None:
                a = self.fine_attention(fine, masks)
                maps.insert(0, a)
            else:
                a = torch.ones_like(fine[:, :1])
            pooled.append(self.fine_norm(region_pool(fine, a, masks)))
        if not self.global_features:
            global_features = f.new_zeros(f.shape[0], 0)
        elif self.global_pool == "roi":
            # Only the cells the visible ROIs occupy: the descriptor (and so Grad-CAM) cannot draw
            # on tissue far from the lesion, nor on regions an ablation hides.
            occupied = masks_at(masks, features[-1].shape[2:]).sum(dim=1, keepdim=True).clamp(max=1.0)
            total = occupied.flatten(1).sum(-1, keepdim=True).clamp_min(1e-6)
            global_features = (features[-1] * occupied).flatten(2).sum(-1) / total
        else:
            global_features = features[-1].mean(dim=(2, 3, 4))
        return torch.cat(pooled, dim=-1), global_features, maps


INTENSITY_LEVELS = (0.25, 0.5, 0.75)


def region_intensity_statistics(image: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B,1,D,H,W) normalised intensities, (B,R,D,H,W) region masks → (B,R,2+levels): mean, SD and
    mean excess over each of ``INTENSITY_LEVELS`` per region (zeros for an empty region)."""
    count = masks.flatten(2).sum(-1).clamp_min(1.0)  # (B,R)
    flat_image = image.flatten(2)  # (B,1,N)
    flat_masks = masks.flatten(2)  # (B,R,N)
    mean = (flat_masks * flat_image).sum(-1) / count
    variance = (flat_masks * (flat_image - mean.unsqueeze(-1)) ** 2).sum(-1) / count
    stats = [mean, variance.clamp_min(0.0).add(1e-6).sqrt()]
    for level in INTENSITY_LEVELS:
        stats.append((flat_masks * torch.relu(flat_image - level)).sum(-1) / count)
    return torch.stack(stats, dim=-1)


def _task_widths(widths: tuple[int, ...], factor: float) -> tuple[int, ...]:
    # Multiples of 8 keep GroupNorm valid; with factor 0.5, four extractors cost about one full one.
    return tuple(max(8, int(round(w * factor / 8)) * 8) for w in widths)


class SpatialMultiTaskNet(nn.Module):
    """ER/PR/HER2 logits and Ki-67 percent from a lesion-centred crop; see the module docstring.

    ``forward(image_and_masks (B,4,D,H,W), scalars (B,n))`` returns a dict:
    ``"er"``, ``"pr"``, ``"her2"``: logits (B,); ``"ki67_percent"``: (B,) in [0, 100];
    ``"roi_weights"``: (B,3) core/rim/peritumoral, rows sum to 1 (the mean over tasks);
    ``"roi_weights_per_task"``: {task: (B,3)}, each task's own weights; ``"deep_logits"``: {task: (B,)},
    each task's logit from the deep path alone (before the scalars' linear path is added); ``"attention"``: list of
    (B,1,d,h,w) maps in [0, 1], one per attention scale (empty without attention);
    ``"attention_fused"``: (B,1,D,H,W), the mean of the maps upsampled to the crop (ones without
    attention); ``"numbers"``: (B,n) the scalars as the network reads them (logged, standardised,
    held within ``scalar_limit_sd``); ``"numbers_sd"``: (B,n) the same before the limit, in training
    SDs from the training mean (only with ``scalar_norm``). A network configured for a subset of
    ``tasks`` returns only those task keys.
    D, H, W must be multiples of 16.
    """

    def __init__(self, config: NetworkConfig | None = None):
        super().__init__()
        self.config = config = config or NetworkConfig()
        self.tasks = config.tasks
        if config.shared_extractor:
            self.branch_of_task = {task: "shared" for task in self.tasks}
            widths = config.widths
        else:
            self.branch_of_task = {task: task for task in self.tasks}
            widths = (
                config.widths
                if not config.multi_task
                else _task_widths(config.widths, config.task_extractor_width_factor)
            )
        self.branches = nn.ModuleDict(
            {name: _Branch(config, widths) for name in dict.fromkeys(self.branch_of_task.values())}
        )
        branch = next(iter(self.branches.values()))
        fusion_in = config.region_features + branch.global_features + config.n_scalar_features
        if config.region_concat:  # every region's own features too, so heads can contrast regions
            fusion_in += len(REGIONS) * config.region_features
        # ROI weighting and fusion: one per task (per-task weighting, or independent single-task
        # networks) or one shared by all tasks (the first design; kept as an ablation).
        per_task = config.region_weighting == "per_task" or not config.multi_task
        self.weighting_of_task = {task: task if per_task else "shared" for task in self.tasks}
        shared_names = list(dict.fromkeys(self.weighting_of_task.values()))
        self.roi_weighting = nn.ModuleDict(
            {
                name: RoiWeighting(branch.descriptor_features, config.region_features, len(REGIONS))
                for name in shared_names
            }
        )
        self.fusion = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.Linear(fusion_in, config.head_hidden), nn.LeakyReLU(0.01), nn.Dropout(config.dropout)
                )
                for name in shared_names
            }
        )
        self.heads = nn.ModuleDict(
            {
                task: nn.Sequential(
                    nn.Linear(config.head_hidden, config.head_hidden),
                    nn.LeakyReLU(0.01),
                    nn.Linear(config.head_hidden, 1),
                )
                for task in self.tasks
            }
        )
        if "ki67" in self.heads:
            with torch.no_grad():
                self.heads["ki67"][-1].bias.fill_(
                    math.log(KI67_INITIAL_PERCENT / (100 - KI67_INITIAL_PERCENT))
                )
        # A linear path from the standardised scalars straight to each task's logit ("wide and deep"):
        # the margin profile carries most of the band and rim signal on its own, and a linear read
        # of it is what a few hundred cases can estimate stably; the deep path adds what it can.
        # Zero-initialised, so training starts from the deep network alone.
        self.scalar_skip = nn.ModuleDict()
        if config.scalar_skip and config.n_scalar_features:
            for task in self.tasks:
                self.scalar_skip[task] = nn.Linear(config.n_scalar_features, 1, bias=False)
                nn.init.zeros_(self.scalar_skip[task].weight)
        self.register_buffer(
            "visible_regions", torch.tensor(config.visible_regions, dtype=torch.float32), persistent=False
        )
        self.scalar_norm = (
            ScalarStandardiser(config.n_scalar_features)
            if config.scalar_norm and config.n_scalar_features
            else nn.Identity()
        )
        visible_scalars = [1.0] * len(SIZE_FEATURES) + [
            config.visible_regions[region] for region in MARGIN_PROFILE_REGION
        ]
        self.register_buffer(
            "visible_scalars",
            torch.tensor(visible_scalars[: config.n_scalar_features], dtype=torch.float32),
            persistent=False,
        )
        logged = [name in config.log_numbers for name in SCALAR_FEATURES[: config.n_scalar_features]]
        self.register_buffer("logged_scalars", torch.tensor(logged, dtype=torch.bool), persistent=False)
        self.cam_layer_names = {
            task: f"branches.{self.branch_of_task[task]}.extractor.stage{config.cam_stage}"
            for task in self.tasks
        }
        self.cam_layer_name = self.cam_layer_names[self.tasks[0]]

    def cam_layer(self, task: str) -> nn.Module:
        """The last feature layer the task's head depends on (for Grad-CAM hooks)."""
        return self.get_submodule(self.cam_layer_names[task])

    def _check_inputs(self, x: torch.Tensor, scalars: torch.Tensor | None) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected input (B,{self.config.in_channels},D,H,W), got {tuple(x.shape)}")
        if any(s % 16 for s in x.shape[2:]):
            raise ValueError(f"crop sides must be multiples of 16, got {tuple(x.shape[2:])}")
        n = self.config.n_scalar_features
        if scalars is None:
            if n:
                raise ValueError(f"this network needs {n} scalar features per case")
            scalars = x.new_zeros(x.shape[0], 0)
        if scalars.ndim != 2 or scalars.shape[0] != x.shape[0] or scalars.shape[1] < n:
            raise ValueError(f"expected scalars ({x.shape[0]},{n}) or wider, got {tuple(scalars.shape)}")
        # The first n of SCALAR_FEATURES; numbers measuring a hidden region are hidden with it.
        return scalars[:, :n].to(x.dtype) * self.visible_scalars

    def forward(self, image_and_masks: torch.Tensor, scalars: torch.Tensor | None = None) -> dict:
        scalars_raw = self._check_inputs(image_and_masks, scalars)
        scalars = scalars_raw
        if self.config.log_numbers:
            scalars = torch.where(self.logged_scalars, scalars.clamp_min(LOG_NUMBER_FLOOR).log(), scalars)
        scalars = self.scalar_norm(scalars)
        out: dict = {}
        if isinstance(self.scalar_norm, ScalarStandardiser):
            out["numbers_sd"] = scalars.detach()  # before the limit: how far out the case lies
            if self.config.scalar_limit_sd:
                limit = float(self.config.scalar_limit_sd)
                scalars = scalars.clamp(-limit, limit)
        # What the fusion and the linear path read (explain.py takes the margin evidence here).
        out["numbers"] = scalars
        image = image_and_masks[:, :1]
        masks = image_and_masks[:, 1:] * self.visible_regions.view(1, -1, 1, 1, 1)
        if not bool(self.visible_regions.all()):
            # Ablations hiding regions hide their tissue too, not only their mask channel.
            image = image * masks.sum(dim=1, keepdim=True).clamp(max=1.0)
        support = None
        if self.config.support_mm:
            # Tissue beyond support_mm of the visible ROIs is not read at all (SIZE_FEATURES[1] is
            # log crop spacing, unstandardised here).
            # Measured on the stage-0 grid (cells of 2 voxels, the finest the extractor reads): exact
            # distances on the full crop cost half a training step.
            with torch.no_grad():
                union = F.max_pool3d(masks.sum(dim=1, keepdim=True).clamp(max=1.0), 2)
                cells = within_mm(union, 2.0 * scalars_raw[:, 1].exp(), self.config.support_mm)
                support = F.interpolate(cells, scale_factor=2.0, mode="nearest")
            image = image * support
        x = torch.cat([image, masks], dim=1)
        present = masks.flatten(2).sum(-1) > 0  # (B,3): regions that exist in this case

        branch_outputs = {name: branch(x, masks, support) for name, branch in self.branches.items()}
        fused_of: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}
        deep_logits: dict[str, torch.Tensor] = {}
        for task in self.tasks:
            branch = self.branch_of_task[task]
            shared = self.weighting_of_task[task]
            if (branch, shared) not in fused_of:  # the shared trunk runs once, not once per task
                descriptors, global_features, _maps = branch_outputs[branch]
                pooled, weights, regions = self.roi_weighting[shared](descriptors, present)
                parts = [pooled, global_features, scalars]
                if self.config.region_concat:
                    parts.append(regions.flatten(1))
                fused_of[branch, shared] = (self.fusion[shared](torch.cat(parts, dim=1)), weights)
            z = deep_logits[task] = self.heads[task](fused_of[branch, shared][0]).squeeze(-1)
            if task in self.scalar_skip:
                z = z + self.scalar_skip[task](scalars).squeeze(-1)
            out[TASK_OUTPUT_KEYS[task]] = 100.0 * torch.sigmoid(z) if task == "ki67" else z
        out["deep_logits"] = deep_logits
        out["roi_weights_per_task"] = {
            task: fused_of[self.branch_of_task[task], self.weighting_of_task[task]][1] for task in self.tasks
        }
        roi_weights = [weights for _fused, weights in fused_of.values()]
        maps_per_branch = [maps for _descriptors, _global, maps in branch_outputs.values()]
        # One value per case for reporting: the mean over task branches (identical when shared).
        out["roi_weights"] = torch.stack(roi_weights).mean(0) if len(roi_weights) > 1 else roi_weights[0]
        if len(maps_per_branch) == 1:
            attention = maps_per_branch[0]
        else:
            attention = [torch.stack(scale_maps).mean(0) for scale_maps in zip(*maps_per_branch)]
        out["attention"] = attention
        size = image_and_masks.shape[2:]
        if attention:
            upsampled = [
                F.interpolate(a, size=size, mode="trilinear", align_corners=False) for a in attention
            ]
            out["attention_fused"] = torch.stack(upsampled).mean(0)
        else:
            out["attention_fused"] = image_and_masks.new_ones(image_and_masks.shape[0], 1, *size)
        return out


def count_parameters(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())
