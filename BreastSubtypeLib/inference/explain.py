"""Explanations computed with the forward pass: Grad-CAM per task and the network's own attention.

Grad-CAM (Selvaraju et al. 2017) on the layer the network documents for each task
(``network.cam_layer(task)``): the activations of that layer weighted by the spatial mean of the
task output's gradient, rectified, upsampled to the crop and scaled to [0, 1]. One forward pass
serves all tasks; each task costs one backward pass from its output to that layer only.
Everything here runs on tensors (no pickles, no files) and returns crop-grid arrays.
"""

from __future__ import annotations

import numpy as np


def _unit_range(volume):
    """Scale a non-negative map to [0, 1]; a map with no positive evidence stays all zeros."""
    peak = volume.max()
    return volume / peak if float(peak) > 0 else volume.zero_()


def _relative(volume):
    """Stretch an attention map to [0, 1] over the crop: the network's sigmoid gates sit in a narrow
    band (e.g. 0.4-0.6), which on screen is a flat square over the crop; radiologists read where
    attention is highest relative to the rest of the crop, as with Grad-CAM."""
    low, high = volume.min(), volume.max()
    return (volume - low) / (high - low) if float(high - low) > 1e-6 else volume.zero_()


def forward_with_explanations(
    network, inputs, scalars, *, tasks, explain: bool, autocast
) -> tuple[dict, dict]:
    """Run ``network`` once; return (outputs as float32 tensors on CPU, crop-grid maps as numpy arrays).

    Maps (each (D, H, W) float32 in [0, 1]): ``attention_fused``, ``attention_scale{i}`` (upsampled
    from its scale to the crop; both stretched to [0, 1] over the crop) and, when ``explain``,
    ``gradcam_{task}``.
    """
    import torch
    import torch.nn.functional as F

    from BreastSubtypeLib.model.config import TASK_OUTPUT_KEYS

    size = tuple(inputs.shape[2:])
    activations: dict[str, torch.Tensor] = {}
    handles = []
    if explain:
        for name in dict.fromkeys(network.cam_layer_names[task] for task in tasks):
            layer = network.get_submodule(name)
            handles.append(
                layer.register_forward_hook(lambda _m, _i, out, key=name: activations.__setitem__(key, out))
            )
    try:
        grad_mode = torch.enable_grad() if explain else torch.inference_mode()
        with grad_mode, autocast:
            outputs = network(inputs, scalars)
            cams = {}
            for task in tasks if explain else ():
                activation = activations[network.cam_layer_names[task]]
                target = outputs[TASK_OUTPUT_KEYS[task]].float().sum()
                (gradient,) = torch.autograd.grad(target, activation, retain_graph=True)
                weights = gradient.float().mean(dim=(2, 3, 4), keepdim=True)
                cam = torch.relu((weights * activation.detach().float()).sum(dim=1, keepdim=True))
                cam = F.interpolate(cam, size=size, mode="trilinear", align_corners=False)
                cams[f"gradcam_{task}"] = _unit_range(cam.clamp_min(0.0))[0, 0]
    finally:
        for handle in handles:
            handle.remove()

    maps: dict[str, np.ndarray] = {}
    with torch.no_grad():
        maps["attention_fused"] = _relative(outputs["attention_fused"][0, 0].float())
        for index, scale_map in enumerate(outputs["attention"]):
            upsampled = F.interpolate(scale_map.float(), size=size, mode="trilinear", align_corners=False)
            maps[f"attention_scale{index}"] = _relative(upsampled[0, 0])
        maps.update(cams)
        maps = {
            name: value.detach().cpu().numpy().astype(np.float32, copy=False) for name, value in maps.items()
        }
        plain = {
            key: value.detach().float().cpu()
            for key, value in outputs.items()
            if key not in ("attention", "attention_fused", "roi_weights_per_task")
        }
    return plain, maps
