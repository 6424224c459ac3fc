"""What the network used, as maps on the crop grid: its own attention and Grad-CAM per task.

Attention (``attention_scale{i}``, ``attention_fused``): the network's spatial attention acts only
where it weights the pooling of core, rim and peritumoral tissue (``blocks.region_pool``); outside
those regions it has no effect on any output. So each scale's map is shown only on the ROI voxels
(upsampled to the crop, multiplied by the crop's core ∪ rim ∪ peritumoral mask) and stretched to
[0, 1] over those voxels: 1 is the most attended ROI tissue, 0 the least. Nothing outside the ROIs
is drawn, so no crop-box edge can glow.

Grad-CAM maps (``gradcam_{task}``) explain the CALL that was made, on ``network.cam_layer(task)``:
the target is the task's output when the call is positive (receptor probability at or above its
threshold; Ki-67 at or above the subtype scheme's cut-off) and minus the output when it is negative.
So a bright region always means "evidence for what the report says": for a negative ER call, the
tissue that made the network less sure of ER positivity. The method is HiResCAM (Draper & Hallinan
2020), the Grad-CAM variant that multiplies gradient and activation voxel by voxel instead of
weighting whole channels by their mean gradient (Selvaraju et al. 2017): each voxel gets its own
first-order share of the target, so tissue the output does not depend on stays dark. On 12 phantoms
(demo model 0.5.0, ``benchmarks/heatmap_shares.py``) this raised the worst single map's mass within
10 mm of the ROIs from 26-44 % to 42-63 %; the rest came from the global descriptor, pooled over the
whole crop. Recipe 5 pools it over the cells the ROIs occupy (``NetworkConfig.global_pool``), and
the maps are computed on the extractor's finest stage (``NetworkConfig.cam_stage`` 0, cells of 2
crop voxels): on stage 1 the upsampled 4-voxel cells of a large lesion's zoomed-out crop spread up to
42 % of a map beyond 10 mm; on stage 0 demo model 0.7.1 keeps at least 80 % on the 12 phantoms and
69 % on 60. Such learned locality varied from run to run (40-80 %), so recipe 7 makes it a property
of the network: it reads no tissue beyond 10 mm of the ROIs (``NetworkConfig.support_mm``), and demo
model 0.10.0's lowest map keeps 92 % on the 12 phantoms and 91 % on 60 (0.8.0: 91 % and 88 %).
The shares are rectified, upsampled to the crop and scaled to [0, 1]. A map with no positive
evidence anywhere stays all zeros and is reported as empty (``explanation_notes``), never silently
drawn as nothing.

Margin evidence (``margin_evidence_{task}``): the same backward pass also reaches the margin profile
numbers (``preprocessing.margin_profile``), which the network receives beside the crop. Each number's
evidence is gradient × (value − the training cases' mean), on the scale the network reads it (log
for ``NetworkConfig.log_numbers``; a number beyond ``scalar_limit_sd`` counts at the limit, where
the network reads it), in logit units (Ki-67: units of its logit) and with the call's
sign: positive = it pushed toward the call made. It says which shells around the tumour, or which
margin-shape measure, the call rests on, which no crop-grid map can show (the shells are finer than
the crop's voxels).

One forward pass serves all tasks; each task costs one backward pass to its layer only.
Everything runs on tensors (no pickles, no files) and returns crop-grid arrays.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from BreastSubtypeLib.tasks import TASK_OUTPUT_KEYS, TASK_TITLES

# Ki-67 call for its Grad-CAM sign: the St Gallen 2013 cut-off, unless the caller gives the scheme's.
DEFAULT_KI67_CUTOFF_PERCENT = 20.0
EMPTY_PEAK = 1e-12


def _unit_range(volume):
    """Scale a non-negative map to [0, 1]; a map with no positive evidence stays all zeros."""
    peak = volume.max()
    return volume / peak if float(peak) > EMPTY_PEAK else volume.zero_()


def _stretch_within(volume, inside):
    """Stretch ``volume`` to [0, 1] over the voxels where ``inside`` is true; zero elsewhere."""
    values = volume[inside]
    if values.numel() == 0:
        return volume.zero_()
    low, high = values.min(), values.max()
    out = volume.new_zeros(volume.shape)
    if float(high - low) > 1e-6:
        out[inside] = (values - low) / (high - low)
    else:  # uniform attention over the ROIs: every ROI voxel weighs the same
        out[inside] = 1.0
    return out


def call_signs(
    outputs: Mapping, tasks, thresholds: Mapping[str, float] | None, ki67_cutoff_percent: float
) -> dict[str, int]:
    """+1 where the call is positive (or Ki-67 high), -1 where negative, from one case's outputs."""
    import torch

    signs = {}
    for task in tasks:
        value = float(outputs[TASK_OUTPUT_KEYS[task]].detach().float().reshape(-1)[0])
        if task == "ki67":
            signs[task] = 1 if value >= ki67_cutoff_percent else -1
        else:
            threshold = float((thresholds or {}).get(task, 0.5))
            signs[task] = 1 if float(torch.sigmoid(torch.tensor(value))) >= threshold else -1
    return signs


def forward_with_explanations(
    network,
    inputs,
    scalars,
    *,
    tasks,
    explain: bool,
    autocast,
    thresholds: Mapping[str, float] | None = None,
    ki67_cutoff_percent: float = DEFAULT_KI67_CUTOFF_PERCENT,
) -> tuple[dict, dict]:
    """Run ``network`` on one case; return (outputs as float32 tensors on CPU, crop-grid maps as numpy).

    Maps (each (D, H, W) float32 in [0, 1]): ``attention_fused`` and ``attention_scale{i}`` (shown
    on the ROI voxels only, see the module docstring) and, when ``explain``, ``gradcam_{task}``
    explaining the call made at ``thresholds`` (receptor probabilities; 0.5 where absent) and
    ``ki67_cutoff_percent``.
    """
    import torch
    import torch.nn.functional as F

    size = tuple(inputs.shape[2:])
    activations: dict[str, torch.Tensor] = {}
    handles = []
    if explain:
        for name in dict.fromkeys(network.cam_layer_names[task] for task in tasks):
            layer = network.get_submodule(name)
            handles.append(
                layer.register_forward_hook(lambda _m, _i, out, key=name: activations.__setitem__(key, out))
            )
    profile = _profile_columns(network)
    evidence: dict[str, torch.Tensor] = {}
    try:
        grad_mode = torch.enable_grad() if explain else torch.inference_mode()
        with grad_mode, autocast:
            if explain and profile is not None:
                scalars = scalars.detach().clone().requires_grad_(True)
            outputs = network(inputs, scalars)
            cams = {}
            signs = call_signs(outputs, tasks, thresholds, ki67_cutoff_percent) if explain else {}
            for task in signs:
                activation = activations[network.cam_layer_names[task]]
                target = signs[task] * _logit(outputs, task).float().sum()
                wrt = [activation] if profile is None else [activation, outputs["numbers"]]
                gradient, *number_gradient = torch.autograd.grad(target, wrt, retain_graph=True)
                if number_gradient:
                    evidence[f"margin_evidence_{task}"] = _margin_evidence(
                        network, profile, outputs["numbers"].detach(), number_gradient[0]
                    )
                cam = torch.relu(_cam_contributions(gradient.float(), activation.detach().float()))
                cam = F.interpolate(cam, size=size, mode="trilinear", align_corners=False)
                cams[f"gradcam_{task}"] = _unit_range(cam.clamp_min(0.0))[0, 0]
    finally:
        for handle in handles:
            handle.remove()

    maps: dict[str, np.ndarray] = {}
    with torch.no_grad():
        rois = inputs[0, 1:].float().sum(dim=0) > 0.5  # core ∪ rim ∪ peritumoral on the crop grid
        upsampled = [
            F.interpolate(a.float(), size=size, mode="trilinear", align_corners=False)[0, 0]
            for a in outputs["attention"]
        ]
        if upsampled:
            maps["attention_fused"] = _stretch_within(torch.stack(upsampled).mean(0), rois)
        else:  # no attention (an ablation): every ROI voxel pooled with the same weight
            maps["attention_fused"] = _stretch_within(rois.float(), rois)
        for index, scale_map in enumerate(upsampled):
            maps[f"attention_scale{index}"] = _stretch_within(scale_map, rois)
        maps.update(cams)
        maps = {
            name: value.detach().cpu().numpy().astype(np.float32, copy=False) for name, value in maps.items()
        }
        plain = {
            key: value.detach().float().cpu()
            for key, value in outputs.items()
            if isinstance(value, torch.Tensor) and key != "attention_fused"
        }
        plain.update({key: value.detach().cpu() for key, value in evidence.items()})
    return plain, maps


def _cam_contributions(gradient, activation):
    """(B,C,d,h,w) gradient and activation of the CAM layer → (B,1,d,h,w) evidence per voxel:
    HiResCAM's element-wise gradient × activation summed over channels, each voxel's first-order
    share of the target, so a voxel the output does not depend on gets nothing (channel-mean
    Grad-CAM would light it whenever it shares a channel with the evidence)."""
    return (gradient * activation).sum(dim=1, keepdim=True)


def _logit(outputs, task: str):
    """The task's output on the logit scale (Ki-67: the logit of its fraction), so that receptor and
    Ki-67 evidence are in comparable units and Grad-CAM's gradients are not squashed by a sigmoid."""
    import torch

    value = outputs[TASK_OUTPUT_KEYS[task]]
    if task != "ki67":
        return value
    fraction = (value / 100.0).clamp(1e-6, 1 - 1e-6)
    return torch.log(fraction) - torch.log1p(-fraction)


def _margin_evidence(network, columns, numbers, gradient):
    """gradient x value of each profile number as the network reads it (``out["numbers"]``: logged
    where ``NetworkConfig.log_numbers`` says, standardised, held within ``scalar_limit_sd``). That is
    the gradient in the measured unit times the value minus the training mean (on the log scale for
    a logged number), and a number held at the limit is credited with what it contributed there. A
    number hidden by an ablation is a constant, not evidence: 0."""
    visible = network.visible_scalars[columns].float()
    return gradient[:, columns].float() * numbers[:, columns].float() * visible


def _profile_columns(network):
    """Column indices of the margin profile in the scalars, or None when the network does not use
    the profile."""
    from BreastSubtypeLib.model.config import SIZE_FEATURES

    n = network.config.n_scalar_features
    if n <= len(SIZE_FEATURES):
        return None
    return list(range(len(SIZE_FEATURES), n))


def explanation_notes(
    maps: Mapping[str, np.ndarray],
    calls: Mapping[str, bool],
    numbers_read_linearly: bool = False,
    support_mm: float = 0.0,
) -> dict[str, dict]:
    """What each map shows, for prediction.json, the report, Slicer and the web legend.

    ``calls``: task → True for a positive call (Ki-67: at or above the cut-off). Each note says
    what bright means and whether the map is empty (no positive evidence anywhere in the crop).
    ``numbers_read_linearly``: the network also reads the margin numbers on a linear path
    (``NetworkConfig.scalar_skip``, recipe 6), whose part of a call no crop map can show.
    ``support_mm``: the network reads no tissue farther than this from the ROIs (recipe 7), so a
    Grad-CAM map is zero beyond it by construction, not by what the network learned.
    """
    notes: dict[str, dict] = {}
    for name, array in maps.items():
        empty = not bool(np.any(np.asarray(array) > 0))
        if name.startswith("attention"):
            meaning = (
                "network attention over core, rim and peritumoral tissue "
                "(1 = most attended ROI voxel; drawn only where it weights the pooling)"
            )
        elif name.startswith("gradcam_"):
            task = name.removeprefix("gradcam_")
            title = TASK_TITLES.get(task, task)
            positive = bool(calls.get(task, True))
            if task == "ki67":
                what = "high Ki-67" if positive else "low Ki-67"
            else:
                what = f"{title} positive" if positive else f"{title} negative"
            meaning = f"Grad-CAM: evidence for the call '{what}' (1 = strongest)"
            if numbers_read_linearly:
                meaning += (
                    "; the image's part only: the margin numbers' part is in the margin profile evidence"
                )
            if support_mm:
                meaning += f"; the network reads no tissue beyond {support_mm:g} mm of the ROIs"
        else:
            meaning = name
        notes[name] = {"meaning": meaning, "empty": empty}
    return notes
