"""``fit``: train the spatial multi-task network from manifest rows (SPEC §8).

Run folder layout (everything written atomically)::

    DIR/config.json                 resolved training, network and preprocessing configs
    DIR/checkpoints/last.safetensors, best.safetensors, optimizer.pt, state.json  (resumable)
    DIR/tensorboard/                TensorBoard logs
    DIR/metrics.json                validation and test figures with bootstrap CIs (+ phantom ceiling)
    DIR/predictions_val.csv, predictions_test.csv, reliability_*.png
    DIR/model/                      the model package, written by ``export.export_run`` afterwards
                                    (``breast-subtype-train fit`` does both)

``fit`` runs five named steps: ``open_run`` (folder, device, seeds, the run's settings),
``prepare_data`` (splits; EVERY case through inference's case pipeline into the crop cache, all
bad cases reported together before anything trains), ``build_model`` (network, loss, optimiser,
or the last checkpoint when resuming), ``train_epochs`` (the loop; checkpoints and state after
every epoch) and ``evaluate_best`` (best weights, thresholds on validation, figures on test). The
weights are on disk before anything runs after training; if a later step fails, the error says
how to finish without training again.

Optimiser AdamW; learning rate warmed up linearly then annealed on a cosine (one-cycle shape,
``schedule: onecycle``) or cosine only; computed from the global step, so resuming needs no pickled
scheduler. Mixed precision on CUDA only (``inference.device.mixed_precision``). Early stopping on
the validation mean AUC of the receptors (or the validation loss when the validation split has no
two-class receptor). Each epoch reseeds shuffling and augmentation from (seed, epoch), so a resumed
run sees the same batches as an uninterrupted one. Multi-GPU: launch with ``torchrun`` (see
``distributed.py``).

>>> learning_rate_factor(0, 100, TrainingConfig(warmup_fraction=0.1))
0.1
>>> fit(read_manifest("m.csv"), "runs/demo", load_training_config("configs/demo.yaml"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from BreastSubtypeLib.atomic import write_text_atomic
from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeLib.inference.device import autocast_context, mixed_precision, select_device
from BreastSubtypeLib.json_data import write_json
from BreastSubtypeLib.model.network import SpatialMultiTaskNet
from BreastSubtypeLib.progress import ProgressCallback, report, scaled
from BreastSubtypeLib.tasks import LABELS, RECEPTORS
from BreastSubtypeTraining import distributed
from BreastSubtypeTraining.checkpoints import (
    STATE_FILE,
    load_checkpoint,
    load_training_state,
    save_checkpoint,
    save_training_state,
)
from BreastSubtypeTraining.config import TrainingConfig, build_configs, trained_tasks
from BreastSubtypeTraining.dataset import batch_to_device, make_dataset, make_loader
from BreastSubtypeTraining.evaluate import (
    choose_thresholds,
    evaluate_predictions,
    predict_cases,
    read_truth,
)
from BreastSubtypeTraining.losses import MultiTaskLoss
from BreastSubtypeTraining.metrics import roc_auc
from BreastSubtypeTraining.splits import data_summary, training_splits

# Settings that may change when a run is resumed (they do not change what is being trained).
RESUMABLE_CHANGES = ("epochs", "threads", "num_workers", "cache_dir", "early_stopping_patience")
SPLIT_NAMES = ("train", "val", "test")


class AfterTrainingError(RuntimeError):
    """A step after training failed; the trained weights are on disk and the message says what to run."""


@dataclass
class FitResult:
    out_dir: Path
    metrics: dict
    thresholds: dict
    best_epoch: int
    epochs_run: int
    network: object = None  # the trained network (best weights on rank 0, last on other ranks)


@dataclass
class Run:
    """What every step of ``fit`` shares: the folder, the settings and where the work happens."""

    out_dir: Path
    config: TrainingConfig
    network_config: object
    preprocessing_config: object
    tasks: tuple[str, ...]
    device: torch.device
    dist: distributed.DistributedContext
    resume: bool
    truth: dict | None
    progress: ProgressCallback | None = None

    @property
    def checkpoints(self) -> Path:
        return self.out_dir / "checkpoints"


@dataclass
class RunData:
    splits: dict[str, list]
    datasets: dict[str, object]


@dataclass
class Model:
    network: torch.nn.Module
    loss_module: MultiTaskLoss
    optimizer: torch.optim.Optimizer
    state: dict = field(default_factory=dict)  # epoch, step, best_score, best_epoch, stale_epochs, history


def seed_everything(seed: int, deterministic: bool) -> None:
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


# --- the steps of fit ----------------------------------------------------------------------------


def open_run(
    out_dir: str | Path,
    config: TrainingConfig,
    *,
    device: str,
    resume: bool,
    truth_csv: str | Path | None,
    progress: ProgressCallback | None,
) -> Run:
    """The run's folder and settings, checked before any work: an existing run needs ``resume``."""
    out_dir = Path(out_dir)
    state_file = out_dir / "checkpoints" / STATE_FILE
    if state_file.exists() and not resume:
        raise BadInputError(f"{out_dir} already holds a training run; pass --resume or choose another --out.")
    resume = resume and state_file.exists()  # nothing to resume: start fresh, as a user re-running expects
    network_config, preprocessing_config = build_configs(config)
    # Read now, not after training: a truth file that cannot be read must not cost a training run.
    truth = read_truth(truth_csv) if truth_csv else None
    dist = distributed.setup(device)
    torch_device = dist.device if dist.world_size > 1 else select_device(device)
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed, config.deterministic)
    return Run(
        out_dir, config, network_config, preprocessing_config, trained_tasks(config, network_config),
        torch_device, dist, resume, truth, progress,
    )  # fmt: skip


def _resolved_settings(run: Run, splits: dict[str, list]) -> dict:
    return {
        "training": run.config.to_dict(),
        "network": run.network_config.to_dict(),
        "preprocessing": run.preprocessing_config.to_dict(),
        "tasks": list(run.tasks),
        "splits": {name: [row.case_id for row in rows] for name, rows in splits.items()},
    }


def prepare_data(run: Run, rows: Sequence) -> RunData:
    """Splits, and every case prepared by inference's case pipeline into the crop cache.

    All cases are checked in one pass, so every bad case is named in one ``BadCasesError`` (one
    line each) before anything is trained or written to the run folder.
    """
    config = run.config
    splits = training_splits(rows, fractions=config.split_ratios, seed=config.split_seed)
    if run.resume:
        _check_same_run(run.out_dir / "config.json", _resolved_settings(run, splits))
    cache_dir = Path(config.cache_dir) if config.cache_dir else run.out_dir / "cache"
    # Rank 0 fills the crop cache first; the others then read it instead of racing to compute it.
    if run.dist.is_main:
        every_case = [row for name in SPLIT_NAMES for row in splits[name]]
        make_dataset(every_case, run.preprocessing_config, cache_dir, progress=scaled(run.progress, 0.0, 0.1))
    run.dist.barrier()
    datasets = {
        name: make_dataset(
            splits[name],
            run.preprocessing_config,
            cache_dir,
            augment=(name == "train" and config.augment),
            seed=config.seed,
            augmentation=config.augmentation,
        )
        for name in SPLIT_NAMES
        if splits[name]
    }
    return RunData(splits, datasets)


def ki67_loss_scale(rows: Sequence) -> dict:
    """Loss settings that standardise Ki-67 on these (training) rows: errors in SDs of their labels
    (in percent, and of log(1 + percent) for the log loss), Huber delta one SD. Fewer than two labels
    (a cohort without Ki-67) fall back to 15 points and 1 log unit."""
    values = [row.ki67_percent for row in rows if row.ki67_percent is not None]
    logs = [math.log1p(max(v, 0.0)) for v in values]
    return {
        "ki67_scale_percent": max(statistics.stdev(values), 1.0) if len(values) > 1 else 15.0,
        "ki67_log_scale": max(statistics.stdev(logs), 0.05) if len(values) > 1 else 1.0,
        "huber_delta": 1.0,
    }


def build_model(run: Run, data: RunData) -> Model:
    """Network, multi-task loss and optimiser; restored from the last checkpoint when resuming."""
    config = run.config
    network = SpatialMultiTaskNet(run.network_config).to(run.device)
    loss_module = MultiTaskLoss(
        run.tasks,
        weights=config.task_weights,
        uncertainty_weighting=config.uncertainty_weighting,
        ki67_loss=config.ki67_loss,
        **(ki67_loss_scale(data.splits["train"]) if config.ki67_standardise else {}),
    ).to(run.device)
    # The linear read of the numbers (scalar_skip) can take its own learning-rate factor: Adam moves a
    # weight by at most about the learning rate a step, so over a short schedule the read stays
    # several times smaller than the logistic regression it stands for (EVALUATION.md).
    # With factor 1: one group in the parameter order checkpoints before the switch have, so they resume.
    everything = list(network.parameters()) + list(loss_module.parameters())
    groups = [{"params": everything, "lr_factor": 1.0}]
    linear = [p for name, p in network.named_parameters() if name.startswith("scalar_skip.")]
    if linear and config.linear_lr_factor != 1.0:
        linear_ids = {id(p) for p in linear}
        groups = [
            {"params": [p for p in everything if id(p) not in linear_ids], "lr_factor": 1.0},
            {"params": linear, "lr_factor": config.linear_lr_factor},
        ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate, weight_decay=config.weight_decay)
    state = {"epoch": 0, "step": 0, "best_score": None, "best_epoch": 0, "stale_epochs": 0, "history": []}
    if run.resume:
        load_checkpoint(run.checkpoints, "last", network, loss_module)
        state = load_training_state(run.checkpoints, optimizer)
    return Model(network, loss_module, optimizer, state)


def read_penalties(network, outputs: dict, config: TrainingConfig) -> torch.Tensor:
    """What the recipe adds to the tasks' loss to shape how the network reads: each held task's
    deep-path logit variance across the batch (``deep_penalty``) and the absolute weights of each
    task's linear read of the numbers (``linear_l1``)."""
    total = torch.zeros((), device=next(network.parameters()).device)
    for task, penalty in config.deep_penalty.items():
        if penalty and task in outputs["deep_logits"]:
            total = total + penalty * outputs["deep_logits"][task].float().var(unbiased=False)
    for task, penalty in config.linear_l1.items():
        if penalty and task in network.scalar_skip:
            total = total + penalty * network.scalar_skip[task].weight.abs().sum()
    return total


def _run_epoch(run: Run, model: Model, trained, loader, total_steps: int, scaler, description: str) -> dict:
    config, state, optimizer = run.config, model.state, model.optimizer
    trained.train()
    totals: dict[str, float] = {}
    count = 0
    bar = tqdm(
        loader, desc=description, leave=False, disable=None if run.dist.is_main else True, dynamic_ncols=True
    )
    for batch in bar:
        image, scalars, labels, known = batch_to_device(batch, run.device)
        scheduled = config.learning_rate * learning_rate_factor(state["step"], total_steps, config)
        for group in optimizer.param_groups:
            group["lr"] = scheduled * group.get("lr_factor", 1.0)
        optimizer.zero_grad(set_to_none=True)
        with autocast_context(run.device, training=True):
            outputs = trained(image, scalars)
        loss, per_task = model.loss_module(
            {k: v.float() for k, v in outputs.items() if k in LABELS}, labels, known
        )
        loss = loss + read_penalties(model.network, outputs, config)
        scaler.scale(loss).backward()
        run.dist.average_gradients(model.loss_module.parameters())
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(
            list(model.network.parameters()) + list(model.loss_module.parameters()), 5.0
        )
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


def _validation_loss(model: Model, loader, device) -> float:
    model.network.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            image, scalars, labels, known = batch_to_device(batch, device)
            outputs = model.network(image, scalars)
            loss, _ = model.loss_module(
                {k: v.float() for k, v in outputs.items() if k in LABELS}, labels, known
            )
            total += float(loss) * image.shape[0]
            count += image.shape[0]
    return total / max(count, 1)


def _monitor(run: Run, data: RunData) -> str:
    """``config.monitor``, or the validation loss when no trained receptor has both classes in val."""
    two_classes = any(
        len({getattr(row, task) for row in data.splits["val"] if getattr(row, task) is not None}) == 2
        for task in RECEPTORS
        if task in run.tasks
    )
    return run.config.monitor if two_classes else "loss"


def _record_epoch(state: dict, epoch: int, score: float, min_epochs: int) -> bool:
    """Update best/stale bookkeeping; True when this epoch is the new best."""
    # Before min_epochs (warm-up, early noisy spikes of a small validation set) no epoch can be
    # the best one and early stopping does not count; the last of them seeds the best checkpoint.
    eligible = epoch >= min_epochs
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
    return improved


def train_epochs(run: Run, data: RunData, model: Model) -> float:
    """The training loop; after every epoch rank 0 writes the checkpoints and ``state.json``.

    Returns the seconds spent training.
    """
    config, dist, state = run.config, run.dist, model.state
    if dist.is_main:
        run.out_dir.mkdir(parents=True, exist_ok=True)
        resolved = _resolved_settings(run, data.splits)
        write_text_atomic(run.out_dir / "config.json", json.dumps(resolved, indent=2) + "\n")
    writer = (
        SummaryWriter(str(run.out_dir / "tensorboard"), purge_step=state["epoch"] + 1)
        if dist.is_main
        else None
    )
    trained = dist.wrap(model.network)
    train_set = data.datasets["train"]
    train_sampler = dist.sampler(train_set, seed=config.seed)
    val_loader = make_loader(data.datasets["val"], config.batch_size, shuffle=False)
    total_steps = math.ceil(len(train_set) / (config.batch_size * dist.world_size)) * config.epochs
    scaler = torch.amp.GradScaler("cuda", enabled=mixed_precision(run.device, training=True))
    monitor = _monitor(run, data)
    started = time.monotonic()
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if config.selection == "best" and state["stale_epochs"] >= config.early_stopping_patience:
            break
        # (seed, epoch) drives shuffling and augmentation: resuming replays the same batches.
        epoch_seed = config.seed * 100_003 + epoch
        torch.manual_seed(epoch_seed)
        if train_sampler is not None:
            train_sampler.set_epoch(epoch)
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        train_loader = make_loader(
            train_set, config.batch_size, shuffle=True, sampler=train_sampler,
            num_workers=config.num_workers, seed=epoch_seed,
        )  # fmt: skip
        figures = _run_epoch(
            run, model, trained, train_loader, total_steps, scaler, f"epoch {epoch}/{config.epochs}"
        )
        val_loss = _validation_loss(model, val_loader, run.device)
        val_predictions = predict_cases(model.network, val_loader, run.device)
        val_aucs = {task: roc_auc(val_predictions[task], val_predictions[f"p_{task}"]) for task in RECEPTORS}
        defined = [value for task, value in val_aucs.items() if task in run.tasks and not math.isnan(value)]
        val_mean_auc = sum(defined) / len(defined) if defined else math.nan
        improved = _record_epoch(
            state, epoch, val_mean_auc if monitor == "mean_auc" else -val_loss, config.min_epochs
        )
        if config.selection == "last":  # the fixed schedule's weights; validation only reports
            improved = True
            state.update(best_epoch=epoch, stale_epochs=0)
        state["history"].append(
            {"epoch": epoch, "train_loss": figures.get("loss"), "val_loss": val_loss,
             "val_mean_auc": None if math.isnan(val_mean_auc) else val_mean_auc,
             "seconds": round(time.monotonic() - started, 1)}
        )  # fmt: skip
        if dist.is_main:
            for key, value in figures.items():
                writer.add_scalar(f"train/{key}", value, epoch)
            writer.add_scalar("val/loss", val_loss, epoch)
            for task, value in val_aucs.items():
                if not math.isnan(value):
                    writer.add_scalar(f"val/auc_{task}", value, epoch)
            writer.add_scalar("lr", model.optimizer.param_groups[0]["lr"], epoch)
            if improved:
                save_checkpoint(run.checkpoints, "best", model.network, model.loss_module)
            save_checkpoint(run.checkpoints, "last", model.network, model.loss_module)
            save_training_state(run.checkpoints, model.optimizer, state)
            print(
                f"epoch {epoch}: train loss {figures.get('loss', math.nan):.4f}, val loss {val_loss:.4f}, "
                f"val mean AUC {val_mean_auc:.3f}{' *' if improved else ''}",
                flush=True,
            )
        report(run.progress, 0.1 + 0.8 * epoch / config.epochs, f"epoch {epoch}/{config.epochs}")
        dist.barrier()
    if writer is not None:
        writer.close()
    return time.monotonic() - started


def evaluate_best(run: Run, data: RunData, model: Model, training_seconds: float) -> dict:
    """Best weights → thresholds on validation → the same thresholds on test; writes metrics.json."""
    config = run.config
    load_checkpoint(run.checkpoints, "best", model.network, model.loss_module)
    common = {"n_boot": config.bootstrap_samples, "seed": config.seed, "scheme": config.subtype_scheme}
    val_loader = make_loader(data.datasets["val"], config.batch_size, shuffle=False)
    val_predictions = predict_cases(model.network, val_loader, run.device)
    thresholds = choose_thresholds(val_predictions)
    results = {
        "val": evaluate_predictions(
            val_predictions, thresholds, run.out_dir, split="val", truth=run.truth, **common
        )
    }
    if "test" in data.datasets:
        test_loader = make_loader(data.datasets["test"], config.batch_size, shuffle=False)
        test_predictions = predict_cases(model.network, test_loader, run.device)
        results["test"] = evaluate_predictions(
            test_predictions, thresholds, run.out_dir, split="test", truth=run.truth, **common
        )
    results.update(
        thresholds=thresholds,
        best_epoch=model.state["best_epoch"],
        epochs_run=model.state["epoch"],
        monitor=_monitor(run, data),
        tasks=list(run.tasks),
        ablation=config.ablation,
        training_seconds=round(training_seconds, 1),
        data=data_summary(data.splits),
        history=model.state["history"],
    )
    write_json(run.out_dir / "metrics.json", results)
    return results


def fit(
    rows: Sequence,
    out_dir: str | Path,
    config: TrainingConfig | None = None,
    *,
    device: str = "auto",
    resume: bool = False,
    truth_csv: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> FitResult:
    """Train on ``rows`` (manifest rows), choose thresholds on validation and evaluate on test in
    the run folder ``out_dir`` (see the module docstring for the steps and the folder)."""
    run = open_run(
        out_dir,
        config or TrainingConfig(),
        device=device,
        resume=resume,
        truth_csv=truth_csv,
        progress=progress,
    )
    data = prepare_data(run, rows)
    model = build_model(run, data)
    training_seconds = train_epochs(run, data, model)
    if not run.dist.is_main:
        run.dist.barrier()
        run.dist.cleanup()
        return FitResult(run.out_dir, {}, {}, model.state["best_epoch"], model.state["epoch"], model.network)
    try:
        results = evaluate_best(run, data, model, training_seconds)
    except Exception as exc:
        raise AfterTrainingError(
            f"training finished and its weights are saved in {run.checkpoints}, but the evaluation failed "
            f"({type(exc).__name__}: {exc}); run the same fit command again with --resume to evaluate "
            "them without training again."
        ) from exc
    report(progress, 1.0, "done")
    run.dist.barrier()
    run.dist.cleanup()
    return FitResult(
        run.out_dir,
        results,
        results["thresholds"],
        model.state["best_epoch"],
        model.state["epoch"],
        model.network,
    )
