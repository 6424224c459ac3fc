"""``predict``: one post-contrast volume and its tumour mask → ER/PR/HER2, Ki-67, subtype, ROI
weights and maps on the input grid (SPEC §5). The one implementation every front end calls.

It is the case pipeline (``preprocessing.case``: validate, align, ROIs, lesion checks, model input)
followed by the model runner (``inference.runner``: device, precision, calls, subtype) on a batch
of one; training prepares and evaluates its cases with the same two.

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

from BreastSubtypeLib.json_data import json_safe
from BreastSubtypeLib.progress import ProgressCallback, report
from BreastSubtypeLib.subtype import DEFAULT_SCHEME, scheme_rules
from BreastSubtypeLib.tasks import RECEPTORS


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

    def __contains__(self, name) -> bool:
        return name in self.crop_arrays  # Mapping's default would build the whole map to find out

    def on_input_box(self, name: str):
        """(float32 image on the input's index box under the crop, its first index (i, j, k)) or None:
        everything of the map that is not zero, for writers that fill the rest themselves."""
        from BreastSubtypeLib.preprocessing.crop import crop_map_on_input_box

        return crop_map_on_input_box(self.crop_arrays[name], self._model_input, self._image)

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
    # map name -> {"meaning": what bright means, "empty": no evidence anywhere} (inference.explain)
    map_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # {"values": {feature: normalised value}, "evidence": {task: {feature: logit units}}, "meaning"}
    margin_profile: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The public ``prediction.json`` content (plain JSON types only)."""
        return {
            "model": dict(self.model),
            **{task: dict(getattr(self, task)) for task in RECEPTORS},
            "ki67_percent": self.ki67_percent,
            "subtype": json_safe(self.subtype),
            "roi_weights": dict(self.roi_weights),
            "roi_volumes_ml": {name: float(value) for name, value in dict(self.roi.volumes_ml).items()},
            "warnings": list(self.warnings),
            "map_notes": {name: dict(note) for name, note in self.map_notes.items()},
            "margin_profile": json_safe(self.margin_profile),
            "timings_s": {name: round(value, 4) for name, value in self.timings_s.items()},
            "input": json_safe(self.input),
        }


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
    scheme: str = DEFAULT_SCHEME,
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
    from BreastSubtypeLib.inference.explain import explanation_notes
    from BreastSubtypeLib.inference.number_range import numbers_beyond_training
    from BreastSubtypeLib.inference.runner import ModelRunner, interpret, operating_thresholds
    from BreastSubtypeLib.preprocessing.case import CaseInput, case_model_input, case_rois, check_case

    case = CaseInput(
        image, tumour_mask, rois, rim_mm, peri_mm, image_source=image_source,
        mask_source=mask_source, rois_source=rois_source,
    )  # fmt: skip
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    report(progress, 0.0, "checking input")
    checked = check_case(case)
    lap("validate")

    report(progress, 0.1, "loading model")
    loaded = load_model(model)
    lap("load_model")

    report(progress, 0.2, "core, rim and peritumoral regions")
    roi = case_rois(checked, loaded.preprocessing_config)
    lap("rois")

    report(progress, 0.35, "model input")
    model_input = case_model_input(checked, roi, loaded.preprocessing_config)
    lap("preprocess")

    report(progress, 0.5, "network")
    runner = ModelRunner(loaded.network, device)
    thresholds = operating_thresholds(loaded)
    ki67_cutoff = scheme_rules(scheme).ki67_cutoff_percent
    outputs, crop_maps = runner.outputs_and_maps(
        model_input, explain=explain, thresholds=thresholds, ki67_cutoff_percent=ki67_cutoff
    )
    lap("network")

    maps = InputGridMaps(crop_maps, model_input, image)
    calls = interpret(outputs, thresholds, scheme)
    map_notes = explanation_notes(
        crop_maps,
        {
            **{task: calls.receptors[task]["positive"] for task in RECEPTORS},
            "ki67": calls.ki67_percent >= ki67_cutoff,
        },
        numbers_read_linearly=loaded.network_config.scalar_skip,
        support_mm=loaded.network_config.support_mm,
    )
    margin = margin_profile_summary(
        model_input.scalars, outputs, loaded.network.tasks, loaded.network.config.n_scalar_features
    )
    info, card = model_info(loaded)
    # Warnings are about this case. That the model is a demonstration one is ``model["demonstration"]``,
    # which every front end (table, report, widget, web) shows once from there.
    warnings = [*roi.warnings, *numbers_beyond_training(outputs, loaded.network_config.scalar_limit_sd)]
    lap("results")
    timings["total"] = sum(timings.values())
    report(progress, 1.0, "done")
    return Prediction(
        er=calls.receptors["er"],
        pr=calls.receptors["pr"],
        her2=calls.receptors["her2"],
        ki67_percent=calls.ki67_percent,
        subtype=json_safe(calls.subtype),
        roi_weights=calls.roi_weights,
        roi=roi,
        maps=maps,
        warnings=warnings,
        timings_s=timings,
        model=info,
        device=str(runner.device),
        input=input_geometry(image),
        image=image,
        model_card=card,
        map_notes=map_notes,
        margin_profile=margin,
    )


def margin_profile_summary(scalars, outputs: Mapping[str, Any], tasks, used_scalars: int) -> dict[str, Any]:
    """The margin-profile numbers the network uses (the first ``used_scalars`` of its scalars, size
    first), as measured, and, when Grad-CAM ran, each one's evidence for each call
    (``inference.explain``). Numbers the network does not read are left out: shown beside the call,
    they would read as reasons for it."""
    from BreastSubtypeLib.model.config import SIZE_FEATURES
    from BreastSubtypeLib.preprocessing.margin_profile import MARGIN_PROFILE_FEATURES

    values = scalars[len(SIZE_FEATURES) : max(used_scalars, len(SIZE_FEATURES))]
    summary: dict[str, Any] = {
        "values": {name: round(float(v), 4) for name, v in zip(MARGIN_PROFILE_FEATURES, values)},
    }
    evidence = {
        task: {
            name: round(float(v), 4)
            for name, v in zip(MARGIN_PROFILE_FEATURES, outputs[f"margin_evidence_{task}"].reshape(-1))
        }
        for task in tasks
        if f"margin_evidence_{task}" in outputs
    }
    if evidence:
        summary["evidence"] = evidence
        summary["meaning"] = (
            "each margin-profile number's push toward the call made, in logit units "
            "(gradient x (value - training mean)); positive = for the call"
        )
    return summary
