"""One training run: a workload, a Regularizer, an optimizer, epochs of minibatches.

This is the loop every trial runs (and ``regsweep demo``): it uses the same
:class:`~regcore.regularizers.Regularizer` users import into their own scripts.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from regcore.regularizers import OPTIMIZERS, OptimizerName, Regularizer, l1_norm, l2_norm, sparsity
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
    momentum: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    seed: int = 0
    device: str = "auto"
    precision: Precision = "fp32"


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

    @property
    def median_step_ms(self) -> float:
        return 1000 * statistics.median(self.step_times_s) if self.step_times_s else math.nan


class StepTimer:
    """Times training steps without slowing them: on CUDA with events read once an epoch
    (a synchronize per step would serialize the host with the GPU), else the host clock."""

    def __init__(self, device: torch.device) -> None:
        self._cuda = device.type == "cuda"
        self._pending: list[tuple[Any, Any]] = []
        self._started = 0.0
        self.times_s: list[float] = []

    def start(self) -> None:
        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            event.record()
            self._pending.append((event, None))
        else:
            self._started = time.perf_counter()

    def stop(self) -> None:
        if self._cuda:
            event = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            event.record()
            self._pending[-1] = (self._pending[-1][0], event)
        else:
            self.times_s.append(time.perf_counter() - self._started)

    def collect(self) -> None:
        """Turn the epoch's recorded CUDA events into times (one synchronize)."""
        if self._pending:
            self._pending[-1][1].synchronize()
            self.times_s += [start.elapsed_time(end) / 1000 for start, end in self._pending]
            self._pending = []


def resolve_device(device: str) -> torch.device:
    """``auto`` → the first CUDA device if there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but no CUDA device is available")
    return resolved


def make_optimizer(groups: list[dict[str, Any]], config: TrainConfig) -> torch.optim.Optimizer:
    """``config.optimizer``'s torch class with ``config.lr`` and the options it takes (its row
    in :data:`~regcore.regularizers.OPTIMIZERS`: ``momentum`` for sgd, ``betas`` for adam)."""
    kind = OPTIMIZERS.get(config.optimizer)
    if kind is None:
        *rest, last = OPTIMIZERS
        raise ValueError(
            f"unknown optimizer {config.optimizer!r}; choose {', '.join(rest)} or {last}"
        )
    options = {option: getattr(config, option) for option in kind.options}
    # Optimizer's own __init__ takes no lr; every row's class does.
    build: Callable[..., torch.optim.Optimizer] = kind.torch_class
    return build(groups, lr=config.lr, **options)


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
) -> TrainResult:
    """Train ``workload`` with ``R(w)`` applied by ``method``; evaluate after every epoch.

    ``on_epoch(epoch, metrics)`` is called after each epoch (a pruner raises from it to stop).
    ``should_stop()`` is asked before every step; True raises :class:`TrainingInterrupted`.
    A NaN or infinite training loss raises :class:`DivergedError`.
    """
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    data = workload.load_data(seed=config.seed)
    model = workload.build_model(seed=config.seed).to(device)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_val, y_val = data.x_val.to(device), data.y_val.to(device)

    reg = Regularizer(model, l1=l1, l2=l2, method=method)
    optimizer = make_optimizer(reg.param_groups(), config)
    reg.attach(optimizer)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
    generator = torch.Generator().manual_seed(config.seed)
    result = TrainResult(metrics={}, device=str(device))
    started = time.perf_counter()
    timer = StepTimer(device)
    result.step_times_s = timer.times_s
    n = x_train.shape[0]
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum, batches = torch.zeros((), device=device), 0
        for start in range(0, n, config.batch_size):
            if should_stop is not None and should_stop():
                raise TrainingInterrupted(f"stopped in epoch {epoch + 1}")
            index = order[start : start + config.batch_size]
            timer.start()
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = workload.loss(model(x_train[index]), y_train[index])
            reg.penalize(loss).backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            timer.stop()
            loss_sum += loss.detach().float()
            batches += 1
        timer.collect()
        result.train_loss = float(loss_sum) / max(batches, 1)
        if not math.isfinite(result.train_loss):
            raise DivergedError(
                f"training loss became {result.train_loss} in epoch {epoch + 1}; "
                f"λ or the learning rate is too large"
            )
        model.eval()
        with autocast:
            metrics = workload.evaluate(model, x_val, y_val)
        metrics.update(regularization_metrics(model, reg))
        metrics["train_loss"] = result.train_loss
        metrics["step_time_ms"] = result.median_step_ms
        result.history.append(metrics)
        result.metrics = metrics
        result.epochs_run = epoch + 1
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    result.wall_s = time.perf_counter() - started
    reg.detach()
    result.model = model
    return result
