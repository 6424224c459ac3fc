"""``fit``: train the spatial multi-task network from manifest rows into a model package (SPEC §8).

Run folder layout (everything written atomically)::

    DIR/config.json                 resolved training, network and preprocessing configs
    DIR/checkpoints/last.safetensors, best.safetensors, optimizer.pt, state.json  (resumable)
    DIR/tensorboard/                TensorBoard logs
    DIR/metrics.json                validation and test figures with bootstrap CIs (+ phantom ceiling)
    DIR/predictions_val.csv, predictions_test.csv, reliability_*.png
    DIR/model/                      the model package (BreastSubtypeLib.model.package)

Optimiser AdamW; learning rate warmed up linearly then annealed on a cosine (one-cycle shape,
``schedule: onecycle``) or cosine only; computed from the global step, so resuming needs no pickled
scheduler. Mixed precision on CUDA only. Early stopping on the validation mean AUC of the receptors
(or the validation loss when the validation split has no two-class receptor). Each epoch reseeds
shuffling and augmentation from (seed, epoch), so a resumed run sees the same batches as an
uninterrupted one. Multi-GPU: launch with ``torchrun`` (see ``distributed.py``).

>>> fit(read_manifest("manifest.csv"), "runs/demo", load_training_config("configs/demo.yaml"))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from BreastSubtypeLib.atomic import atomic_path, write_text_atomic
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.progress import ProgressCallback, report
from BreastSubtypeTraining.losses import ALL_TASKS, CLASSIFICATION_TASKS


@dataclass
class TrainingConfig:
    """Everything a training run needs besides the data; loaded from YAML (data, never code)."""

    epochs: int = 40
    batch_size: int = 8
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    schedule: str = "onecycle"  # "onecycle" (warm-up + cosine) or "cosine"
    warmup_fraction: float = 0.1
    early_stopping_patience: int = 10
    min_epochs: int = 0  # epochs before early stopping and best-checkpoint selection start
    monitor: str = "mean_auc"  # "mean_auc" or "loss"
    tasks: tuple[str, ...] = ALL_TASKS
    task_weights: dict[str, float] = field(default_factory=dict)
    uncertainty_weighting: bool = False
    ki67_loss: str = "huber"
    seed: int = 0
    split_ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)
    augment: bool = True
    augmentation: dict = field(default_factory=dict)  # keyword arguments of augment.training_augmentation
    num_workers: int = 0
    threads: int | None = None  # torch CPU threads; None keeps torch's default
    deterministic: bool = True
    ablation: str = "full"  # a key of BreastSubtypeLib.model.config.ABLATIONS
    network: dict = field(default_factory=dict)  # overrides of NetworkConfig
    preprocessing: dict = field(default_factory=dict)  # overrides of PreprocessingConfig
    cache_dir: str | None = None  # shared crop cache (ablations reuse one); default DIR/cache
    bootstrap_samples: int = 1000
    subtype_scheme: str = "st_gallen_2013"
    model_id: str = "breast-subtype-model"
    model_version: str = "0.1.0"
    model_title: str = "BreastSubtype spatial multi-task model"
    demonstration: bool = False
    intended_use: str = (
        "Research use only: estimating ER, PR, HER2 and Ki-67 from one post-contrast breast DCE-MRI "
        "volume. Not a medical device; not for diagnosis or treatment decisions."
    )
    changelog: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping, source: str = "training config") -> TrainingConfig:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise BadInputError(f"{source}: unknown setting(s) {', '.join(unknown)}.")
        values = dict(data)
        for name in ("tasks", "split_ratios"):
            if name in values:
                values[name] = tuple(values[name])
        config = cls(**values)
        problems = []
        if config.epochs < 1 or config.batch_size < 1:
            problems.append("epochs and batch_size must be at least 1")
        if not 0 <= config.min_epochs <= config.epochs:
            problems.append("min_epochs must be between 0 and epochs")
        if not config.learning_rate > 0:
            problems.append("learning_rate must be positive")
        if config.schedule not in ("onecycle", "cosine"):
            problems.append(f"schedule must be onecycle or cosine, got {config.schedule!r}")
        if config.monitor not in ("mean_auc", "loss"):
            problems.append(f"monitor must be mean_auc or loss, got {config.monitor!r}")
        if not config.tasks or not set(config.tasks) <= set(ALL_TASKS):
            problems.append(f"tasks must be a subset of {', '.join(ALL_TASKS)}")
        if len(config.split_ratios) != 3 or abs(sum(config.split_ratios) - 1.0) > 1e-6:
            problems.append("split_ratios must be three fractions (train, val, test) summing to 1")
        if problems:
            raise BadInputError(f"{source}: {'; '.join(problems)}.")
        return config


def load_training_config(path: str | Path | None, **overrides) -> TrainingConfig:
    """Read a YAML config (``yaml.safe_load``: plain data only); keyword overrides win."""
    data: dict = {}
    if path is not None:
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise BadInputError(f"{path}: training config cannot be read as YAML ({exc}).") from exc
        if not isinstance(data, dict):
            raise BadInputError(f"{path}: training config must be a mapping of settings.")
    data.update({key: value for key, value in overrides.items() if value is not None})
    return TrainingConfig.from_dict(data, source=str(path or "training config"))


# --- model and data -------------------------------------------------------------------------------


def build_configs(config: TrainingConfig):
    """NetworkConfig (ABLATIONS[config.ablation] then config.network overrides) and PreprocessingConfig."""
    from BreastSubtypeLib.model.config import ABLATIONS, NetworkConfig, PreprocessingConfig

    if config.ablation not in ABLATIONS:
        raise BadInputError(
            f"training config: unknown ablation {config.ablation!r} (one of {', '.join(ABLATIONS)})."
        )
    network_config = NetworkConfig().with_overrides({**ABLATIONS[config.ablation], **config.network})
    preprocessing_config = PreprocessingConfig().with_overrides(config.preprocessing)
    return network_config, preprocessing_config


def trained_tasks(config: TrainingConfig, network_config) -> tuple[str, ...]:
    """Tasks the loss sees: the config's, narrowed to the network's own in single-task variants."""
    from BreastSubtypeLib.model.config import TASK_OUTPUT_KEYS

    network_tasks = [TASK_OUTPUT_KEYS[task] for task in network_config.tasks]
    return tuple(task for task in config.tasks if task in network_tasks) or tuple(network_tasks)


def make_dataset(
    rows,
    preprocessing_config,
    cache_dir,
    *,
    progress=None,
    augment: bool = False,
    seed: int = 0,
    augmentation=None,
):
    """The data engineer's cached-crop dataset, optionally with mask-preserving augmentation."""
    from BreastSubtypeTraining.dataset import CachedCropDataset

    dataset = CachedCropDataset(list(rows), preprocessing_config, Path(cache_dir), progress=progress)
    if augment:
        from BreastSubtypeTraining.augment import AugmentedDataset

        dataset = AugmentedDataset(dataset, seed=seed, **(augmentation or {}))
    return dataset


def make_loader(
    dataset, batch_size: int, *, shuffle: bool, sampler=None, num_workers: int = 0, seed: int = 0
):
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        generator=generator,
        drop_last=False,
    )


def batch_to_device(batch: Mapping, device):
    """(image, scalars, labels, known) tensors from a collated ``CachedCropDataset`` batch."""
    image = batch["image"].to(device, non_blocking=True).float()
    scalars = batch["scalars"].to(device, non_blocking=True).float()
    labels = {task: batch["labels"][task].to(device).float() for task in ALL_TASKS}
    known = {task: batch["known"][task].to(device).bool() for task in ALL_TASKS}
    return image, scalars, labels, known


def resolve_device(device: str = "auto"):
    """'auto' → CUDA, then Apple MPS, then CPU; asking for CUDA without one is a user error."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError("--device cuda was asked for but no CUDA GPU is available here.")
    if device not in ("cpu",) and not device.startswith(("cuda", "mps")):
        raise BadInputError(f"device must be auto, cpu or cuda, got {device!r}.")
    return torch.device(device)


def seed_everything(seed: int, deterministic: bool) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this before the first CUDA matmul to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        # warn_only: a few CUDA backward kernels have no deterministic version; warn, don't crash.
        torch.use_deterministic_algorithms(True, warn_only=True)


def learning_rate_factor(step: int, total_steps: int, config: TrainingConfig) -> float:
    """Fraction of the peak learning rate at ``step``: linear warm-up (onecycle) then cosine to ~0."""
    total_steps = max(total_steps, 1)
    warmup = int(round(config.warmup_fraction * total_steps)) if config.schedule == "onecycle" else 0
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total_steps - warmup, 1)
    return 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


# --- splits --------------------------------------------------------------------------------------


def assign_splits(rows: Sequence, config: TrainingConfig) -> dict[str, list]:
    """train/val/test rows: the manifest's split column where given, the rest patient-level and
    stratified (the data engineer's ``splits.assign_splits``)."""
    from BreastSubtypeTraining.splits import assign_splits as split_rows

    assigned = split_rows(list(rows), fractions=tuple(config.split_ratios), seed=config.seed)
    splits = {name: [row for row in assigned if row.split == name] for name in ("train", "val", "test")}
    if not splits["train"]:
        raise BadInputError("the manifest leaves no case for training.")
    if not splits["val"]:
        raise BadInputError(
            "the manifest leaves no case for validation (thresholds and early stopping need some)."
        )
    return splits


def data_summary(splits: Mapping[str, Sequence]) -> dict:
    """Counts and label prevalences per split, for the model card (no patient identifiers)."""
    summary = {}
    for name, rows in splits.items():
        entry = {"cases": len(rows), "patients": len({getattr(r, "patient_id", r.case_id) for r in rows})}
        for task in CLASSIFICATION_TASKS:
            values = [getattr(r, task) for r in rows if getattr(r, task) is not None]
            entry[f"{task}_positive"] = int(sum(values))
            entry[f"{task}_labelled"] = len(values)
        ki67 = [r.ki67_percent for r in rows if r.ki67_percent is not None]
        entry["ki67_labelled"] = len(ki67)
        entry["ki67_median_percent"] = float(sorted(ki67)[len(ki67) // 2]) if ki67 else None
        summary[name] = entry
    return summary


# --- checkpoints ---------------------------------------------------------------------------------


def _state_tensors(network, loss_module) -> dict:
    tensors = {f"network.{k}": v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    tensors.update({f"loss.{k}": v.detach().cpu().contiguous() for k, v in loss_module.state_dict().items()})
    return tensors


def save_checkpoint(directory: Path, name: str, network, loss_module) -> None:
    from safetensors.torch import save_file

    with atomic_path(directory / f"{name}.safetensors") as tmp:
        save_file(_state_tensors(network, loss_module), str(tmp))


def load_checkpoint(directory: Path, name: str, network, loss_module) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(directory / f"{name}.safetensors"))
    network.load_state_dict({k[len("network.") :]: v for k, v in tensors.items() if k.startswith("network.")})
    loss_state = {k[len("loss.") :]: v for k, v in tensors.items() if k.startswith("loss.")}
    if loss_state:
        loss_module.load_state_dict(loss_state)


def save_training_state(directory: Path, optimizer, state: dict) -> None:
    import torch

    # Optimizer moments are tensors and numbers only; reloaded with weights_only=True (no unpickling
    # of arbitrary objects). state.json is written last: it marks the checkpoint complete.
    with atomic_path(directory / "optimizer.pt") as tmp:
        torch.save(optimizer.state_dict(), tmp)
    write_text_atomic(directory / "state.json", json.dumps(state, indent=2) + "\n")


def load_training_state(directory: Path, optimizer) -> dict:
    import torch

    optimizer.load_state_dict(torch.load(directory / "optimizer.pt", map_location="cpu", weights_only=True))
    return json.loads((directory / "state.json").read_text(encoding="utf-8"))


# Settings that may change when a run is resumed (they do not change what is being trained).
RESUMABLE_CHANGES = ("epochs", "threads", "num_workers", "cache_dir", "early_stopping_patience")


def _check_same_run(config_json: Path, resolved: dict) -> None:
    """Refuse to resume a run with other data splits, network, preprocessing or training settings."""
    try:
        previous = json.loads(config_json.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadInputError(f"{config_json}: the run to resume has no readable config ({exc}).") from exc
    differing = [
        key for key in ("network", "preprocessing", "tasks", "splits") if previous.get(key) != resolved[key]
    ]
    old_training = {k: v for k, v in previous.get("training", {}).items() if k not in RESUMABLE_CHANGES}
    new_training = {k: v for k, v in resolved["training"].items() if k not in RESUMABLE_CHANGES}
    differing += sorted(
        k for k in set(old_training) | set(new_training) if old_training.get(k) != new_training.get(k)
    )
    if differing:
        raise BadInputError(
            f"{config_json.parent} holds a run with other settings ({', '.join(differing)}); "
            "resume it with its own config or choose another --out."
        )


# --- the loop ------------------------------------------------------------------------------------


@dataclass
class FitResult:
    out_dir: Path
    model_dir: Path | None
    metrics: dict
    thresholds: dict
    best_epoch: int
    epochs_run: int
    network: object = None  # the trained network (best weights on rank 0, last on other ranks)


def _run_epoch(
    network, loss_module, loader, optimizer, device, config, state, total_steps, scaler, bar_desc, dist
):
    import torch
    from tqdm import tqdm

    network.train()
    totals: dict[str, float] = {}
    count = 0
    bar = tqdm(loader, desc=bar_desc, leave=False, disable=None if dist.is_main else True, dynamic_ncols=True)
    for batch in bar:
        image, scalars, labels, known = batch_to_device(batch, device)
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * learning_rate_factor(state["step"], total_steps, config)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda"):
            outputs = network(image, scalars)
        loss, per_task = loss_module(
            {k: v.float() for k, v in outputs.items() if k in ALL_TASKS}, labels, known
        )
        scaler.scale(loss).backward()
        dist.average_gradients(loss_module.parameters())
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(list(network.parameters()) + list(loss_module.parameters()), 5.0)
        scaler.step(optimizer)
        scaler.update()
        state["step"] += 1
        n = image.shape[0]
        count += n
        totals["loss"] = totals.get("loss", 0.0) + float(loss.detach()) * n
        for task, value in per_task.items():
            totals[task] = totals.get(task, 0.0) + value * n
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    return {key: value / max(count, 1) for key, value in totals.items()}


def _validation_loss(network, loss_module, loader, device) -> float:
    import torch

    network.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            image, scalars, labels, known = batch_to_device(batch, device)
            outputs = network(image, scalars)
            loss, _ = loss_module({k: v.float() for k, v in outputs.items() if k in ALL_TASKS}, labels, known)
            total += float(loss) * image.shape[0]
            count += image.shape[0]
    return total / max(count, 1)


def fit(
    rows: Sequence,
    out_dir: str | Path,
    config: TrainingConfig | None = None,
    *,
    device: str = "auto",
    resume: bool = False,
    truth_csv: str | Path | None = None,
    export: bool = True,
    progress: ProgressCallback | None = None,
) -> FitResult:
    """Train on ``rows`` (manifest rows), choose thresholds on validation, evaluate on test and
    write the run folder and its model package (see the module docstring)."""
    import torch
    from torch.utils.tensorboard import SummaryWriter

    from BreastSubtypeLib.model.network import SpatialMultiTaskNet
    from BreastSubtypeTraining import distributed
    from BreastSubtypeTraining.evaluate import (
        choose_thresholds,
        evaluate_predictions,
        predict_cases,
        read_truth,
        write_json,
    )
    from BreastSubtypeTraining.losses import MultiTaskLoss

    config = config or TrainingConfig()
    out_dir = Path(out_dir)
    checkpoints = out_dir / "checkpoints"
    if (checkpoints / "state.json").exists() and not resume:
        raise BadInputError(f"{out_dir} already holds a training run; pass --resume or choose another --out.")
    if resume and not (checkpoints / "state.json").exists():
        resume = False  # nothing to resume: start fresh, as a user re-running a command expects

    dist = distributed.setup(device)
    torch_device = dist.device if dist.world_size > 1 else resolve_device(device)
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed, config.deterministic)

    network_config, preprocessing_config = build_configs(config)
    tasks = trained_tasks(config, network_config)
    splits = assign_splits(rows, config)
    cache_dir = Path(config.cache_dir) if config.cache_dir else out_dir / "cache"
    resolved = {
        "training": config.to_dict(),
        "network": network_config.to_dict(),
        "preprocessing": preprocessing_config.to_dict(),
        "tasks": list(tasks),
        "splits": {name: [r.case_id for r in split_rows] for name, split_rows in splits.items()},
    }
    if resume:
        _check_same_run(out_dir / "config.json", resolved)

    # Rank 0 fills the crop cache first; the others then read it instead of racing to compute it.
    datasets = {}
    if dist.is_main:
        for index, name in enumerate(("train", "val", "test")):
            if splits[name]:
                sub = (
                    None
                    if progress is None
                    else (lambda f, s, i=index: report(progress, (i + f) / 3 * 0.1, s))
                )
                make_dataset(splits[name], preprocessing_config, cache_dir, progress=sub)
    dist.barrier()
    for name in ("train", "val", "test"):
        if splits[name]:
            datasets[name] = make_dataset(
                splits[name],
                preprocessing_config,
                cache_dir,
                augment=(name == "train" and config.augment),
                seed=config.seed,
                augmentation=config.augmentation,
            )

    network = SpatialMultiTaskNet(network_config).to(torch_device)
    loss_module = MultiTaskLoss(
        tasks,
        weights=config.task_weights,
        uncertainty_weighting=config.uncertainty_weighting,
        ki67_loss=config.ki67_loss,
    ).to(torch_device)
    optimizer = torch.optim.AdamW(
        list(network.parameters()) + list(loss_module.parameters()),
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    state = {"epoch": 0, "step": 0, "best_score": None, "best_epoch": 0, "stale_epochs": 0, "history": []}
    if resume:
        load_checkpoint(checkpoints, "last", network, loss_module)
        state = load_training_state(checkpoints, optimizer)
    model = dist.wrap(network)

    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / "config.json", json.dumps(resolved, indent=2) + "\n")
    writer = (
        SummaryWriter(str(out_dir / "tensorboard"), purge_step=state["epoch"] + 1) if dist.is_main else None
    )

    train_sampler = dist.sampler(datasets["train"], seed=config.seed)
    val_loader = make_loader(datasets["val"], config.batch_size, shuffle=False)
    steps_per_epoch = math.ceil(len(datasets["train"]) / (config.batch_size * dist.world_size))
    total_steps = steps_per_epoch * config.epochs
    scaler = torch.amp.GradScaler("cuda", enabled=torch_device.type == "cuda")
    val_has_two_classes = any(
        len({getattr(r, t) for r in splits["val"] if getattr(r, t) is not None}) == 2
        for t in CLASSIFICATION_TASKS
        if t in tasks
    )
    monitor = config.monitor if val_has_two_classes else "loss"

    started = time.monotonic()
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if state["stale_epochs"] >= config.early_stopping_patience:
            break
        # (seed, epoch) drives shuffling and augmentation: resuming replays the same batches.
        epoch_seed = config.seed * 100_003 + epoch
        torch.manual_seed(epoch_seed)
        if train_sampler is not None:
            train_sampler.set_epoch(epoch)
        if hasattr(datasets["train"], "set_epoch"):
            datasets["train"].set_epoch(epoch)
        train_loader = make_loader(
            datasets["train"], config.batch_size, shuffle=True, sampler=train_sampler,
            num_workers=config.num_workers, seed=epoch_seed,
        )  # fmt: skip
        train_figures = _run_epoch(
            model, loss_module, train_loader, optimizer, torch_device, config, state, total_steps, scaler,
            f"epoch {epoch}/{config.epochs}", dist,
        )  # fmt: skip
        val_loss = _validation_loss(network, loss_module, val_loader, torch_device)
        val_predictions = predict_cases(network, val_loader, torch_device)
        from BreastSubtypeTraining.metrics import roc_auc

        val_aucs = {t: roc_auc(val_predictions[t], val_predictions[f"p_{t}"]) for t in CLASSIFICATION_TASKS}
        defined = [v for t, v in val_aucs.items() if t in tasks and not math.isnan(v)]
        val_mean_auc = sum(defined) / len(defined) if defined else math.nan
        score = val_mean_auc if monitor == "mean_auc" else -val_loss
        # Before min_epochs (warm-up, early noisy spikes of a small validation set) no epoch can be
        # the best one and early stopping does not count; the last of them seeds the best checkpoint.
        eligible = epoch >= config.min_epochs
        improved = state["best_score"] is None or (
            eligible and not math.isnan(score) and score > state["best_score"] + 1e-4
        )
        if not eligible:
            improved, state["best_score"] = True, None
        state["epoch"] = epoch
        if improved:
            state.update(best_score=score if eligible else None, best_epoch=epoch, stale_epochs=0)
        else:
            state["stale_epochs"] += 1
        state["history"].append(
            {"epoch": epoch, "train_loss": train_figures.get("loss"), "val_loss": val_loss,
             "val_mean_auc": None if math.isnan(val_mean_auc) else val_mean_auc,
             "seconds": round(time.monotonic() - started, 1)}
        )  # fmt: skip
        if dist.is_main:
            for key, value in train_figures.items():
                writer.add_scalar(f"train/{key}", value, epoch)
            writer.add_scalar("val/loss", val_loss, epoch)
            for task, value in val_aucs.items():
                if not math.isnan(value):
                    writer.add_scalar(f"val/auc_{task}", value, epoch)
            writer.add_scalar("lr", optimizer.param_groups[0]["lr"], epoch)
            if improved:
                save_checkpoint(checkpoints, "best", network, loss_module)
            save_checkpoint(checkpoints, "last", network, loss_module)
            save_training_state(checkpoints, optimizer, state)
            print(
                f"epoch {epoch}: train loss {train_figures.get('loss', math.nan):.4f}, val loss {val_loss:.4f}, "
                f"val mean AUC {val_mean_auc:.3f}{' *' if improved else ''}",
                flush=True,
            )
        report(progress, 0.1 + 0.8 * epoch / config.epochs, f"epoch {epoch}/{config.epochs}")
        dist.barrier()
    if writer is not None:
        writer.close()

    if not dist.is_main:
        dist.barrier()
        dist.cleanup()
        return FitResult(out_dir, None, {}, {}, state["best_epoch"], state["epoch"], network)

    # Final figures from the best epoch: thresholds on validation, then applied unchanged to test.
    load_checkpoint(checkpoints, "best", network, loss_module)
    truth = read_truth(truth_csv) if truth_csv else None
    val_predictions = predict_cases(network, val_loader, torch_device)
    thresholds = choose_thresholds(val_predictions)
    common = {
        "n_boot": config.bootstrap_samples,
        "seed": config.seed,
        "scheme": config.subtype_scheme,
        "truth": truth,
    }
    results = {"val": evaluate_predictions(val_predictions, thresholds, out_dir, split="val", **common)}
    if "test" in datasets:
        test_loader = make_loader(datasets["test"], config.batch_size, shuffle=False)
        test_predictions = predict_cases(network, test_loader, torch_device)
        results["test"] = evaluate_predictions(test_predictions, thresholds, out_dir, split="test", **common)
    results.update(
        thresholds=thresholds,
        best_epoch=state["best_epoch"],
        epochs_run=state["epoch"],
        monitor=monitor,
        tasks=list(tasks),
        ablation=config.ablation,
        training_seconds=round(time.monotonic() - started, 1),
        data=data_summary(splits),
        history=state["history"],
    )
    write_json(out_dir / "metrics.json", results)
    model_dir = None
    if export:
        from BreastSubtypeTraining.export import export_run

        model_dir = export_run(out_dir, out_dir / "model")
    report(progress, 1.0, "done")
    dist.barrier()
    dist.cleanup()
    return FitResult(out_dir, model_dir, results, thresholds, state["best_epoch"], state["epoch"], network)
