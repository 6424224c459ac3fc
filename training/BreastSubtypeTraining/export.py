"""Turn a training run folder into a model package (SPEC §4) with its model card.

The package itself is written by ``BreastSubtypeLib.model.package.save_model_package`` (the one
implementation inference loads); this module gathers what goes into it from the run: the best
checkpoint, the configs, the validation thresholds, the test figures with their CIs (and, for
phantom cohorts, the achievable ceilings), the training-data summary, intended use and changelog.

>>> export_run("runs/demo", "BreastSubtypeLib/model/demo_model")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.json_data import json_safe
from BreastSubtypeLib.model.config import NetworkConfig, PreprocessingConfig
from BreastSubtypeLib.model.network import SpatialMultiTaskNet
from BreastSubtypeLib.model.package import library_versions, save_model_package
from BreastSubtypeLib.subtype import SCHEMES
from BreastSubtypeLib.tasks import RECEPTORS, TASK_TITLES
from BreastSubtypeTraining.checkpoints import load_network_weights
from BreastSubtypeTraining.config import TrainingConfig
from BreastSubtypeTraining.losses import KI67_LOSS_WORDS

DEMONSTRATION_WARNING = (
    "**DEMONSTRATION MODEL — NOT FOR CLINICAL USE.** It was trained on synthetic phantoms made by "
    "`breast-subtype phantom`, never on patient images; its outputs on real MRI mean nothing."
)
LICENSE_TEXT = """Apache License, Version 2.0 (https://www.apache.org/licenses/LICENSE-2.0)

The weights in models/model.safetensors were trained by the BreastSubtype project. They are provided
"AS IS", WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND. Research use only; not a medical device.
"""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{path}: not a readable training-run file ({exc}).") from exc


def _fmt(value, digits: int = 3) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def _auc_cell(entry: dict | None) -> str:
    if not entry or entry.get("auc") is None:
        return "n/a"
    return f"{_fmt(entry['auc'])} ({_fmt(entry.get('ci_low'))}–{_fmt(entry.get('ci_high'))})"


def metrics_table(split_metrics: dict) -> str:
    """Markdown table of one split: AUC with 95 % CI, ceiling AUC, sensitivity/specificity."""
    ceiling = split_metrics.get("phantom_ceiling") or {}
    lines = [
        "| task | AUC (95 % CI) | achievable AUC (phantom truth) | threshold | sensitivity | specificity | ECE |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task in RECEPTORS:
        title = TASK_TITLES[task]
        entry = split_metrics.get(task, {})
        lines.append(
            f"| {title} | {_auc_cell(entry)} | {_auc_cell(ceiling.get(task))} | {_fmt(entry.get('threshold'))} "
            f"| {_fmt(entry.get('sensitivity'))} | {_fmt(entry.get('specificity'))} | {_fmt(entry.get('ece'))} |"
        )
    ki67 = split_metrics.get("ki67_percent", {})
    floor = (ceiling.get("ki67_percent") or {}).get("mae")
    lines += [
        "",
        f"Ki-67: MAE {_fmt(ki67.get('mae'), 1)} points, RMSE {_fmt(ki67.get('rmse'), 1)} points, "
        f"Pearson r {_fmt(ki67.get('pearson_r'), 2)} (n = {ki67.get('n', 0)})"
        + (
            f"; noise floor (MAE of the generator's expected Ki-67) {_fmt(floor, 1)} points."
            if floor is not None
            else "."
        ),
    ]
    return "\n".join(lines)


def model_card(metadata: dict, run_metrics: dict, extra_markdown: str | None = None) -> str:
    """The package's docs/README.md."""
    ours = metadata["breast_subtype"]
    demonstration = ours.get("demonstration", False)
    test = run_metrics.get("test") or run_metrics.get("val") or {}
    split_name = "test" if run_metrics.get("test") else "validation"
    data = ours.get("training_data", {})
    parts = [f"# {metadata.get('name', ours.get('title'))} ({ours.get('id')} {metadata['version']})", ""]
    if demonstration:
        parts += [DEMONSTRATION_WARNING, ""]
    parts += [
        metadata["description"],
        "",
        "## Intended use",
        "",
        ours["intended_use"],
        "",
        "## Inputs and outputs",
        "",
        "One post-contrast DCE-MRI volume and a tumour mask; the core, rim "
        f"({ours['preprocessing'].get('rim_mm')} mm) and peritumoral ({ours['preprocessing'].get('peri_mm')} mm) "
        "regions are derived from the mask. Outputs: probability of ER, PR and HER2 positivity (called positive "
        "at the thresholds below, chosen on the validation split by Youden's J), Ki-67 in percent, and the "
        f"surrogate subtype ({ours.get('subtype_scheme')}, Ki-67 cut-off {ours.get('ki67_cutoff_percent')} %)."
        + _support_words((ours.get("network") or {}).get("support_mm"))
        + _log_words((ours.get("network") or {}).get("log_numbers")),
        "",
        f"## Performance on the held-out {split_name} split (n = {test.get('n_cases', 0)})",
        "",
        metrics_table(test),
        "",
        "95 % confidence intervals: percentile bootstrap over cases "
        f"({ours.get('bootstrap_samples')} resamples, seeded). Thresholds: "
        + ", ".join(f"{TASK_TITLES[t]} {_fmt(v)}" for t, v in ours["thresholds"].items())
        + ".",
        "",
        "## Training data",
        "",
        f"{data.get('description', '')}",
        "",
        "| split | cases | ER+ / labelled | PR+ / labelled | HER2+ / labelled | Ki-67 labelled |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for split, entry in data.get("splits", {}).items():
        parts.append(
            f"| {split} | {entry['cases']} | {entry['er_positive']} / {entry['er_labelled']} | "
            f"{entry['pr_positive']} / {entry['pr_labelled']} | {entry['her2_positive']} / {entry['her2_labelled']} | "
            f"{entry['ki67_labelled']} |"
        )
    training = ours.get("training", {})
    parts += [
        "",
        "## Training",
        "",
        f"Ablation variant `{training.get('ablation')}`; {training.get('epochs_run')} epochs run; "
        + (
            "the final weights of the fixed schedule are kept"
            if training.get("selection", "last") == "last"
            else f"best epoch {training.get('best_epoch')} (early stopping on validation {training.get('monitor')})"
        )
        + f"; {training.get('training_seconds')} s. Loss: masked BCE for ER/PR/HER2 plus "
        f"{KI67_LOSS_WORDS.get(training.get('ki67_loss'), training.get('ki67_loss'))} for Ki-67 "
        "(missing labels contribute nothing)"
        + _deep_penalty_words(training.get("deep_penalty") or {})
        + _linear_rate_words(training.get("linear_lr_factor", 1.0))
        + _linear_l1_words(training.get("linear_l1") or {})
        + ".",
    ]
    if ours.get("reproduce"):
        parts += ["", "Reproduce:", "", "```", ours["reproduce"], "```"]
    if extra_markdown:
        parts += ["", extra_markdown.strip()]
    parts += ["", "## Changelog", ""] + [f"- {entry}" for entry in ours.get("changelog", [])]
    if demonstration:
        parts += ["", DEMONSTRATION_WARNING]
    return "\n".join(parts) + "\n"


def _deep_penalty_words(penalty: dict) -> str:
    held = {task: value for task, value in penalty.items() if value}
    if not held:
        return ""
    named = ", ".join(f"{TASK_TITLES.get(task, task)} {value:g}" for task, value in held.items())
    return (
        f"; the deep path's logit is held small by a penalty on its variance across each batch ({named}:"
        " the larger, the more of the output the linear read of the margin profile and size carries)"
    )


def _linear_l1_words(penalty: dict) -> str:
    held = {task: value for task, value in penalty.items() if value}
    if not held:
        return ""
    named = ", ".join(f"{TASK_TITLES.get(task, task)} {value:g}" for task, value in held.items())
    return f"; the linear read's weights carry an L1 penalty, so each task reads few of the numbers ({named})"


def _linear_rate_words(factor: float) -> str:
    if factor == 1.0:
        return ""
    return f"; the linear read of the numbers learns at {factor:g} x the learning rate of the other weights"


def _support_words(support_mm: float | None) -> str:
    if not support_mm:
        return ""
    return (
        f" The network reads only tissue within {support_mm:g} mm of these regions (its input and every"
        " feature map are zero beyond), so neither a call nor a heatmap can rest on tissue farther away."
    )


def _log_words(log_numbers) -> str:
    if not log_numbers:
        return ""
    names = [f"`{name}`" for name in log_numbers]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f" It reads {listed} on a log scale."


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    model_id: str | None = None,
    version: str | None = None,
    changelog: list[str] | None = None,
    reproduce: str | None = None,
    data_description: str | None = None,
    card_extra_markdown: str | None = None,
    title: str | None = None,
    demonstration: bool | None = None,
) -> Path:
    """Write the model package of ``run_dir`` (best checkpoint) into ``out_dir``; returns ``out_dir``.

    ``title`` and ``demonstration`` override the run's config: a run trained with the defaults on
    phantoms is exported as the labelled demonstration model without retraining."""
    run_dir = Path(run_dir)
    resolved = _read_json(run_dir / "config.json")
    run_metrics = _read_json(run_dir / "metrics.json")
    checkpoint = run_dir / "checkpoints" / "best.safetensors"
    if not checkpoint.is_file():
        raise BadInputError(f"{checkpoint}: the run has no best checkpoint to export.")
    training = TrainingConfig.from_dict(resolved["training"], source=str(run_dir / "config.json"))
    network_config = NetworkConfig.from_dict(resolved["network"])
    preprocessing_config = PreprocessingConfig.from_dict(resolved["preprocessing"])
    network = SpatialMultiTaskNet(network_config)
    load_network_weights(checkpoint, network)
    network.eval()

    demonstration = bool(training.demonstration if demonstration is None else demonstration)
    description = (
        "Spatial multi-task network (shared 3-D extractor, multi-scale spatial attention, core/rim/peritumoral "
        "ROI weighting, heads for ER, PR, HER2 and Ki-67) after Zeng & Zhou 2026."
    )
    if demonstration:
        description = (
            "DEMONSTRATION model trained on synthetic phantoms, NOT for clinical use. " + description
        )
    summary = run_metrics.get("data", {})
    metadata = {
        "id": model_id or training.model_id,
        "version": version or training.model_version,
        "title": title or training.model_title,
        "description": description,
        "authors": ["BreastSubtype team"],
        "copyright": "Copyright (c) BreastSubtype team",
        "thresholds": run_metrics["thresholds"],
        "ki67_cutoff_percent": SCHEMES[training.subtype_scheme].ki67_cutoff_percent,
        "subtype_scheme": training.subtype_scheme,
        "tasks": {"er": "probability", "pr": "probability", "her2": "probability", "ki67_percent": "percent"},
        "training_data": {
            "description": data_description
            or (
                "Synthetic breast DCE-MRI phantoms (BreastSubtypeLib.phantom)."
                if demonstration
                else "See manifest."
            ),
            "splits": summary,
        },
        "metrics": {split: run_metrics.get(split) for split in ("val", "test") if run_metrics.get(split)},
        "intended_use": training.intended_use
        if not demonstration
        else "Demonstration of the software only (offline demo, tests, tutorials). NOT for clinical use: "
        "trained on synthetic phantoms, never on patient images.",
        "demonstration": demonstration,
        "changelog": changelog
        or training.changelog
        or [f"{training.model_version}: trained with breast-subtype-train."],
        "training": {
            "ablation": training.ablation,
            "epochs_run": run_metrics.get("epochs_run"),
            "best_epoch": run_metrics.get("best_epoch"),
            "monitor": run_metrics.get("monitor"),
            "training_seconds": run_metrics.get("training_seconds"),
            "ki67_loss": training.ki67_loss,
            "deep_penalty": training.deep_penalty,
            "linear_l1": training.linear_l1,
            "linear_lr_factor": training.linear_lr_factor,
            "ki67_standardise": training.ki67_standardise,
            "selection": training.selection,
            "seed": training.seed,
            "library_versions": {
                name: version
                for name, version in library_versions().items()
                if name in ("torch", "monai", "numpy")
            },
        },
        "bootstrap_samples": training.bootstrap_samples,
        "reproduce": reproduce,
    }
    card_metadata = {
        "version": metadata["version"],
        "description": description,
        "name": title or training.model_title,
        "breast_subtype": {
            **metadata,
            "preprocessing": preprocessing_config.to_dict(),
            "network": network_config.to_dict(),
        },
    }
    card = model_card(card_metadata, run_metrics, card_extra_markdown)
    save_model_package(
        network,
        network_config,
        preprocessing_config,
        Path(out_dir),
        metadata=json_safe(metadata),
        model_card_markdown=card,
        license_text=LICENSE_TEXT,
    )
    return Path(out_dir)
