"""One training run: a workload, a Regularizer, an optimizer, epochs of minibatches.

This is the loop every trial of a declarative workload runs (and ``regsweep demo``); it
uses the same :class:`~regcore.regularizers.Regularizer` users import into their own
scripts. Per step: forward (bf16 autocast if asked), backward of the loss with the penalty
where the method adds it there, the data gradient clipped (the penalty's never: see
``Regularizer.clip_grad_norm_``), the optimizer's step, the schedule's next lr.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from regcore.regularizers import OptimizerName, Regularizer, l1_norm, l2_norm, sparsity
from regcore.spec import EarlyStoppingSpec, SchedulerSpec, SweepSpec
from regcore.worker.batches import Batches
from regcore.worker.device import StepTimer, resolve_device
from regcore.worker.optim import LrSchedule, make_optimizer, param_groups
from regcore.workloads import Workload

Precision = Literal["fp32", "bf16"]


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class TrainingInterrupted(RuntimeError):
    """``should_stop`` asked the run to end before it finished."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    momentum: float | None = None
    nesterov: bool | None = None
    betas: tuple[float, float] | None = None
    lr_mult: Mapping[str, float] = field(default_factory=dict)
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    clip_grad_norm: float | None = None
    num_workers: int = 0
    exclude: list[str] | None = None  # which parameters the Regularizer sees (its defaults)
    only: list[str] | None = None
    seed: int = 0
    device: str = "auto"
    precision: Precision = "fp32"
    monitor: str = "val_loss"  # the first objective: early stopping and plateau watch it
    maximize: bool = False
    max_steps: int | None = None  # end after this many steps, unevaluated (the cost probe)
    early_stopping: EarlyStoppingSpec | None = None


@dataclass(kw_only=True)
class EarlyStop:
    """The monitored metric epoch by epoch: its best epoch, and whether to stop (``rule``:
    after ``patience`` epochs without an improvement over ``min_delta``; None: never)."""

    rule: EarlyStoppingSpec | None
    metric: str
    maximize: bool = False
    best: float = math.inf  # sign-adjusted: smaller is better
    best_epoch: int = -1
    stale: int = 0

    def improved(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        """Take ``epoch``'s ``metrics``; whether they are the best so far."""
        value = (-1.0 if self.maximize else 1.0) * metrics.get(self.metric, math.nan)
        margin = 0.0 if self.rule is None else self.rule.min_delta
        if value < self.best - margin:
            self.best, self.best_epoch, self.stale = value, epoch, 0
            return True
        self.stale += 1
        return False

    @property
    def spent(self) -> bool:
        return self.rule is not None and self.stale >= self.rule.patience


def train_config(spec: SweepSpec, *, lr: float) -> TrainConfig:
    """The built-in loop's settings for ``spec`` (its optimizer, training and regularize)."""
    o, t = spec.optimizer, spec.training
    first = spec.objectives[0]
    return TrainConfig(
        epochs=t.epochs,
        batch_size=t.batch_size,
        optimizer=o.name,
        lr=lr,
        momentum=o.momentum,
        nesterov=o.nesterov,
        betas=o.betas,
        lr_mult=o.lr_mult,
        scheduler=t.scheduler,
        clip_grad_norm=t.clip_grad_norm,
        num_workers=t.num_workers,
        exclude=spec.regularize.exclude,
        only=spec.regularize.only,
        seed=t.seed,
        device=t.device,
        precision=t.precision,
        monitor=first.metric,
        maximize=first.direction == "maximize",
        early_stopping=t.early_stopping,
    )


@dataclass(kw_only=True)
class TrainResult:
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    epochs_run: int = 0
    train_loss: float = math.nan
    step_times_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    device: str = "cpu"
    model: nn.Module | None = None
    objective_epoch: int = -1  # the epoch whose metrics are the result (0-based)

    @property
    def median_step_ms(self) -> float:
        return 1000 * statistics.median(self.step_times_s) if self.step_times_s else math.nan


#: What :func:`regularization_metrics` measures: after every epoch only when it is the
#: monitored objective (they cost ~15 % of a small model's epoch), else after the last.
REGULARIZATION_METRICS = frozenset({"sparsity", "sparsity_1e-3", "l1_norm", "l2_norm"})


def regularization_metrics(model: nn.Module, reg: Regularizer) -> dict[str, float]:
    return {
        "sparsity": sparsity(reg.parameters),
        "sparsity_1e-3": sparsity(reg.parameters, tol=1e-3),
        "l1_norm": l1_norm(reg.parameters),
        "l2_norm": l2_norm(reg.parameters),
    }


def train_workload(
    workload: Workload[Any],
    *,
    l1: float,
    l2: float,
    method: str,
    config: TrainConfig,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    initial_state: Mapping[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``workload`` with ``R(w)`` applied by ``method``; evaluate after every epoch.

    ``on_epoch(epoch, metrics)`` is called after each epoch (a pruner raises from it to stop).
    ``should_stop()`` is asked before every step; True raises :class:`TrainingInterrupted`.
    A NaN or infinite training loss raises :class:`DivergedError`. Each epoch's metrics are
    in the result's ``history`` (learning curves), also when a pruner or a stop ends it.
    ``initial_state`` (a ``state_dict``) warm-starts the model. ``config.early_stopping``
    ends the run once ``config.monitor`` stops improving; the result (metrics and model) is
    then the best epoch's if it says ``restore_best``, else the last epoch's, as without it.
    A path hands on its points' last weights (keeping the best epoch's instead made its walk
    stick near its start: bench/time_to_lambda.py, sparse_regression 0.338 → 0.429).
    """
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    data = workload.load_data(seed=config.seed)
    model = workload.build_model(seed=config.seed).to(device)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    batches = Batches(
        data,
        device=device,
        batch_size=config.batch_size,
        seed=config.seed,
        num_workers=config.num_workers,
    )
    reg = Regularizer(model, l1=l1, l2=l2, method=method, exclude=config.exclude, only=config.only)
    groups = param_groups(reg, model, lr=config.lr, lr_mult=config.lr_mult)
    options = {"momentum": config.momentum, "nesterov": config.nesterov, "betas": config.betas}
    optimizer = make_optimizer(groups, name=config.optimizer, lr=config.lr, options=options)
    reg.attach(optimizer)
    schedule = LrSchedule(
        optimizer,
        config.scheduler,
        epochs=config.epochs,
        steps_per_epoch=batches.steps_per_epoch,
        maximize=config.maximize,
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    result = TrainResult(metrics={}, device=str(device), model=model)
    started = time.perf_counter()
    timer = StepTimer(device)
    result.step_times_s = timer.times_s
    limit = math.inf if config.max_steps is None else config.max_steps
    taken = 0  # steps, over all epochs
    rule = config.early_stopping
    watch = EarlyStop(rule=rule, metric=config.monitor, maximize=config.maximize)
    kept: tuple[dict[str, torch.Tensor], dict[str, float]] | None = None  # the best epoch's
    every_epoch = config.monitor in REGULARIZATION_METRICS
    for epoch in range(config.epochs):
        model.train()
        loss_sum, steps = torch.zeros((), device=device), 0
        epoch_batches = batches.epoch()
        while taken < limit:
            if should_stop is not None and should_stop():
                raise TrainingInterrupted(f"stopped in epoch {epoch + 1}")
            timer.start()  # a step's time includes getting its batch, as it did in the past
            batch = next(epoch_batches, None)
            if batch is None:
                timer.discard()
                break
            x, y = batch
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = workload.loss(model(x), y)
            reg.penalize(loss).backward()  # type: ignore[no-untyped-call]
            if config.clip_grad_norm is not None:
                reg.clip_grad_norm_(config.clip_grad_norm)
            optimizer.step()
            schedule.after_step()
            timer.stop()
            loss_sum += loss.detach().float()
            steps += 1
            taken += 1
        timer.collect()
        if taken >= limit:
            break  # the steps were all that was asked for, unevaluated
        result.train_loss = float(loss_sum) / max(steps, 1)
        if not math.isfinite(result.train_loss):
            raise DivergedError(
                f"training loss became {result.train_loss} in epoch {epoch + 1}; "
                f"λ or the learning rate is too large"
            )
        model.eval()
        with autocast:
            metrics = batches.evaluate(workload, model)
        if every_epoch:
            metrics.update(regularization_metrics(model, reg))
        metrics["train_loss"] = result.train_loss
        metrics["step_time_ms"] = result.median_step_ms
        result.history.append(metrics)
        result.metrics = metrics
        result.epochs_run = epoch + 1
        result.objective_epoch = epoch
        schedule.after_epoch(metrics.get(config.monitor, math.nan))
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if watch.improved(epoch, metrics) and rule is not None and rule.restore_best:
            kept = ({k: v.detach().clone() for k, v in model.state_dict().items()}, metrics)
        if watch.spent:
            break
    if kept is not None and watch.best_epoch != result.objective_epoch:
        model.load_state_dict(kept[0])
        result.metrics, result.objective_epoch = kept[1], watch.best_epoch
    if result.metrics and not every_epoch:  # of the model the result is
        result.metrics = {**result.metrics, **regularization_metrics(model, reg)}
    result.wall_s = time.perf_counter() - started
    reg.detach()
    return result
