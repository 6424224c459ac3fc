"""``predict``: one post-contrast volume and its tumour mask → ER/PR/HER2, Ki-67, subtype, ROI
weights and maps on the input grid (SPEC §5). The one implementation every front end calls.

Speed comes from never touching the whole volume more than validation needs: ROIs are computed in
the lesion's bounding box, the network sees a small lesion-centred crop, and maps are pasted back
into the input grid only where the crop lies.

>>> result = predict(image, mask, model="demo")  # doctest: +SKIP
>>> result.er["probability"], result.ki67_percent, result.subtype["name"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from BreastSubtypeLib.progress import ProgressCallback, report

RECEPTORS = ("er", "pr", "her2")


class InputGridMaps(Mapping):
    """``{name: sitk.Image on the input grid}``, each built when asked for and not kept.

    A map on a 512x512x160 grid is 168 MB of float32; eight of them at once would triple the
    memory of a prediction, so the maps stay on the small crop grid (``crop_arrays``) and are
    pasted into the input grid one at a time (``crop_map_to_input_grid``, which only resamples the
    crop's box). ``dict(maps)`` materialises them all.
    """

    def __init__(self, crop_arrays: dict[str, np.ndarray], model_input, image: sitk.Image) -> None:
        self.crop_arrays = crop_arrays
        self._model_input = model_input
        self._image = image

    def __getitem__(self, name: str) -> sitk.Image:
        from BreastSubtypeLib.preprocessing.crop import crop_map_to_input_grid

        return crop_map_to_input_grid(self.crop_arrays[name], self._model_input, self._image)

    def on_crop_grid(self, name: str) -> sitk.Image:
        """The map on the crop's own physical grid: the same values in space, a few hundred kB."""
        crop = sitk.GetImageFromArray(self.crop_arrays[name])
        crop.CopyInformation(self._model_input.crop_reference)
        return crop

    def __iter__(self):
        return iter(self.crop_arrays)

    def __len__(self) -> int:
        return len(self.crop_arrays)


@dataclass
class Prediction:
    """Everything ``predict`` found, with the geometry of the input it came from."""

    er: dict[str, Any]  # {"probability", "positive", "threshold"}
    pr: dict[str, Any]
    her2: dict[str, Any]
    ki67_percent: float
    subtype: dict[str, Any]
    roi_weights: dict[str, float]  # core, rim, peritumoral; sum to 1
    roi: Any  # rois.regions.RoiResult (labelmap on the input grid, volumes_ml, ...)
    maps: Mapping[str, sitk.Image]  # on the input grid, values in [0, 1] (InputGridMaps: built on access)
    warnings: list[str]
    timings_s: dict[str, float]
    model: dict[str, Any]  # {"id", "version", "demonstration"}
    input: dict[str, Any]  # {"size", "spacing_mm", "origin_mm", "direction"}
    image: sitk.Image = field(repr=False)  # kept for overlays; never written
    model_card: dict[str, Any] = field(default_factory=dict, repr=False)
    device: str = "cpu"

    def summary(self) -> dict[str, Any]:
        """The public ``prediction.json`` content (plain JSON types only)."""
        return {
            "model": dict(self.model),
            **{task: dict(getattr(self, task)) for task in RECEPTORS},
            "ki67_percent": self.ki67_percent,
            "subtype": _json_safe(self.subtype),
            "roi_weights": dict(self.roi_weights),
            "roi_volumes_ml": {name: float(value) for name, value in dict(self.roi.volumes_ml).items()},
            "warnings": list(self.warnings),
            "timings_s": {name: round(value, 4) for name, value in self.timings_s.items()},
            "input": _json_safe(self.input),
        }


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return _json_safe(dataclasses.asdict(value))
    return value


def input_geometry(image: sitk.Image) -> dict[str, Any]:
    return {
        "size": list(image.GetSize()),
        "spacing_mm": list(image.GetSpacing()),
        "origin_mm": list(image.GetOrigin()),
        "direction": list(image.GetDirection()),
    }


_MODEL_CACHE: dict[tuple, Any] = {}


def load_model(model="demo"):
    """A ``LoadedModel`` from one: a registry id, a package folder or zip, or a ``LoadedModel``.

    Loaded packages are kept per process (keyed by folder and weights' modification time), so a
    cohort or a server does not reload weights for every case.
    """
    from BreastSubtypeLib.model.package import LoadedModel, load_model_package
    from BreastSubtypeLib.model.registry import resolve

    if isinstance(model, LoadedModel):
        return model
    folder = resolve(os.fspath(model))
    weights = Path(folder) / "models" / "model.safetensors"
    key = (str(Path(folder).resolve()), weights.stat().st_mtime_ns if weights.exists() else 0)
    if key not in _MODEL_CACHE:
        _MODEL_CACHE.clear()  # one model at a time keeps memory flat
        _MODEL_CACHE[key] = load_model_package(folder)
    return _MODEL_CACHE[key]


def model_info(loaded) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``{"id","version","demonstration"}``, model-card summary) from a package's metadata."""
    metadata = loaded.metadata or {}
    demonstration = bool(metadata.get("demonstration", False))
    info = {
        "id": str(metadata.get("id") or metadata.get("name") or Path(str(loaded.path)).name),
        "version": str(metadata.get("version", "")),
        "demonstration": demonstration,
    }
    card = {
        "description": metadata.get("description"),
        "intended_use": metadata.get("intended_use"),
        "training_data": metadata.get("training_data"),
        "metrics": metadata.get("metrics"),
    }
    return info, card


def operating_thresholds(loaded) -> dict[str, float]:
    """The per-task probability thresholds chosen on validation (0.5 where a package has none)."""
    metadata = loaded.metadata or {}
    chosen = metadata.get("thresholds") or metadata.get("operating_thresholds") or {}
    return {task: float(chosen.get(task, 0.5)) for task in RECEPTORS}


def predict(
    image: sitk.Image,
    tumour_mask: sitk.Image | None = None,
    model="demo",
    device: str = "auto",
    *,
    rois: sitk.Image | None = None,
    rim_mm: float | None = None,
    peri_mm: float | None = None,
    explain: bool = True,
    scheme: str = "st_gallen_2013",
    progress: ProgressCallback | None = None,
    image_source: str = "image in memory",
    mask_source: str = "mask in memory",
    rois_source: str = "ROI labelmap in memory",
) -> Prediction:
    """Predict ER/PR/HER2 probabilities, Ki-67 and the surrogate subtype; see the module docstring.

    Give either ``tumour_mask`` (core, rim and peritumoral regions are computed from it at
    ``rim_mm``/``peri_mm``, by default the widths the model was trained with) or ``rois``, a labelmap
    of reviewed regions (1 core, 2 rim, 3 peritumoral, e.g. edited in Slicer), used exactly as given:
    the tumour is then core plus rim. ``explain=False`` skips Grad-CAM (attention maps are always
    returned: they come with the forward pass).
    """
    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeLib.imaging.alignment import align_mask_to_image
    from BreastSubtypeLib.imaging.validation import validate_image
    from BreastSubtypeLib.rois.regions import compute_rois

    if (tumour_mask is None) == (rois is None):
        raise BadInputError(
            "Give either a tumour mask or a core/rim/peritumoral labelmap, not both or neither."
        )
    if rois is not None and (rim_mm is not None or peri_mm is not None):
        raise BadInputError(
            f"The rim and peritumoral widths apply only when the regions are computed from a tumour mask; "
            f"the labelmap {rois_source} already defines them."
        )

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    report(progress, 0.0, "checking input")
    validate_image(image, image_source)
    if rois is None:
        mask = align_mask_to_image(tumour_mask, image, mask_source)
        given = None
    else:
        given = roi_result_from_labelmap(rois, image, rois_source)
        mask_source = rois_source
    lap("validate")

    report(progress, 0.1, "loading model")
    loaded = load_model(model)
    preprocessing = loaded.preprocessing_config
    rim_mm = float(preprocessing.rim_mm if rim_mm is None else rim_mm)
    peri_mm = float(preprocessing.peri_mm if peri_mm is None else peri_mm)
    lap("load_model")

    report(progress, 0.2, "core, rim and peritumoral regions")
    if given is None:
        roi = compute_rois(image, mask, rim_mm=rim_mm, peri_mm=peri_mm, mask_source=mask_source)
    else:
        roi = given
    _check_lesion_size(roi, mask_source)
    lap("rois")

    report(progress, 0.35, "model input")
    from BreastSubtypeLib.preprocessing.crop import prepare_model_input

    model_input = prepare_model_input(image, roi.labelmap, preprocessing, source=image_source)
    lap("preprocess")

    report(progress, 0.5, "network")
    outputs, crop_maps, device_name = _run_network(loaded, model_input, device, explain)
    lap("network")

    maps = InputGridMaps(crop_maps, model_input, image)

    thresholds = operating_thresholds(loaded)
    receptors = {}
    for task in RECEPTORS:
        probability = float(1.0 / (1.0 + np.exp(-float(outputs[task]))))
        receptors[task] = {
            "probability": probability,
            "positive": bool(probability >= thresholds[task]),
            "threshold": thresholds[task],
        }
    ki67_percent = float(outputs["ki67_percent"])
    from BreastSubtypeLib.subtype import subtype_from_probabilities

    subtype = _json_safe(
        subtype_from_probabilities(
            receptors["er"]["probability"],
            receptors["pr"]["probability"],
            receptors["her2"]["probability"],
            ki67_percent,
            thresholds=thresholds,
            scheme=scheme,
        )
    )
    weights = [float(w) for w in outputs["roi_weights"].reshape(-1)]
    info, card = model_info(loaded)
    # Warnings are about this case. That the model is a demonstration one is ``model["demonstration"]``,
    # which every front end (table, report, widget, web) shows once from there.
    warnings = list(roi.warnings)
    lap("results")
    timings["total"] = sum(timings.values())
    report(progress, 1.0, "done")
    return Prediction(
        er=receptors["er"],
        pr=receptors["pr"],
        her2=receptors["her2"],
        ki67_percent=ki67_percent,
        subtype=subtype,
        roi_weights=dict(zip(("core", "rim", "peritumoral"), weights)),
        roi=roi,
        maps=maps,
        warnings=warnings,
        timings_s=timings,
        model=info,
        device=device_name,
        input=input_geometry(image),
        image=image,
        model_card=card,
    )


def roi_result_from_labelmap(labelmap: sitk.Image, image: sitk.Image, source: str):
    """A reviewed core/rim/peritumoral labelmap as a ``RoiResult`` on ``image``'s grid, voxels kept.

    Checked and aligned by the same functions as a tumour mask (``validate_mask``,
    ``align_mask_to_image``), one label at a time: nearest-neighbour resampling of each label's
    voxels is exactly the resampled labelmap, and labels never blend.
    """
    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeLib.imaging.alignment import align_mask_to_image
    from BreastSubtypeLib.imaging.validation import validate_mask
    from BreastSubtypeLib.rois.labels import CORE, PERITUMORAL, RIM, ROI_NAMES
    from BreastSubtypeLib.rois.regions import RoiResult

    validate_mask(labelmap, source, binary=False)  # 3-D, sane geometry, whole numbers, not empty
    values = sitk.GetArrayViewFromImage(labelmap)
    highest = float(values.max())
    if highest > PERITUMORAL:
        raise BadInputError(
            f"The ROI labelmap {source} holds the label {highest:g}; expected 1 core, 2 rim, 3 peritumoral."
        )
    present = [label for label in (CORE, RIM, PERITUMORAL) if (values == label).any()]
    if CORE not in present and RIM not in present:
        raise BadInputError(f"The ROI labelmap {source} has no tumour (labels 1 core, 2 rim).")
    labels = np.zeros(tuple(reversed(image.GetSize())), np.uint8)
    for label in present:
        on_grid = align_mask_to_image(sitk.Equal(labelmap, label), image, source)
        labels[sitk.GetArrayViewFromImage(on_grid) > 0] = label
    result = sitk.GetImageFromArray(labels)
    result.CopyInformation(image)

    voxel_ml = float(np.prod(image.GetSpacing())) / 1000.0
    counts = np.bincount(labels.ravel(), minlength=PERITUMORAL + 1)
    volumes_ml = {ROI_NAMES[label]: float(counts[label] * voxel_ml) for label in (CORE, RIM, PERITUMORAL)}
    volumes_ml["tumour"] = volumes_ml["core"] + volumes_ml["rim"]
    # The widths that drew these regions are unknown once a radiologist has edited them.
    return RoiResult(result, volumes_ml, rim_mm_used=float("nan"))


def _check_lesion_size(roi, mask_source: str) -> None:
    """A lesion of a few voxels has no core, rim or texture to read: refuse it rather than guess."""
    from BreastSubtypeLib.errors import BadInputError
    from BreastSubtypeLib.rois.one_click import MIN_VOLUME_ML

    tumour_ml = float(roi.volumes_ml.get("tumour", roi.volumes_ml["core"] + roi.volumes_ml["rim"]))
    if tumour_ml < MIN_VOLUME_ML:
        raise BadInputError(
            f"The tumour in the mask {mask_source} is only {tumour_ml * 1000:.1f} mm³ "
            f"(at least {MIN_VOLUME_ML * 1000:.0f} mm³ is needed); it is too small to characterise."
        )


def _run_network(loaded, model_input, device: str, explain: bool):
    import torch

    from BreastSubtypeLib.inference.device import (
        autocast_context,
        make_deterministic,
        select_device,
        single_case_cpu_threads,
    )
    from BreastSubtypeLib.inference.explain import forward_with_explanations

    target = select_device(device)
    make_deterministic(target)
    network = loaded.network.to(target).eval()
    inputs = torch.as_tensor(np.ascontiguousarray(model_input.array), dtype=torch.float32)[None].to(target)
    scalars = torch.as_tensor(np.asarray(model_input.scalars), dtype=torch.float32).reshape(1, -1).to(target)
    with single_case_cpu_threads(target):
        outputs, maps = forward_with_explanations(
            network, inputs, scalars, tasks=network.tasks, explain=explain, autocast=autocast_context(target)
        )
    return outputs, maps, str(target)
