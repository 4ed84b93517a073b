"""K members of one workload trained together: one vmapped forward and backward a step.

Members share the architecture, the method and the data's order (each member's epoch ``e``
reads the ``e``-th permutation drawn from the trial's seed, as a single trial does), and
start from the same initial weights; each has its own λ₁, λ₂, lr and schedule. A member
that leaves (pruned, diverged, finished) frees its slot, which a new member may take at
the next epoch: it starts from the initial weights at its own epoch 0, so every member
trains exactly as a trial of its own would (see tests/worker/population). While the
members are at the same epoch they share each batch; otherwise each gets its own.

Tensor data only (``regcore.workloads.Dataset``); dropout differs per member
(``randomness="different"``); BatchNorm keeps running statistics per member.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from regcore.worker.device import resolve_device
from regcore.worker.optim import Schedule
from regcore.worker.population._optim import PopulationOptimizer
from regcore.worker.population._stack import Stack
from regcore.worker.training import TrainConfig
from regcore.workloads import Dataset, Workload


@dataclass(kw_only=True)
class Member:
    """One slot's trial: its setting and where it is."""

    l1: float
    l2: float
    lr: float
    schedule: Schedule
    generator: torch.Generator
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)


class PopulationTrainer:
    """Trains up to ``k`` members of ``workload`` with ``method`` as ``config`` says."""

    def __init__(
        self, workload: Workload[Any], *, method: str, config: TrainConfig, k: int
    ) -> None:
        if config.scheduler.name == "onecycle":
            raise ValueError("the onecycle schedule is not available in population trials")
        self.device = resolve_device(config.device)
        self.config = config
        self.workload = workload
        torch.manual_seed(config.seed)
        data = workload.load_data(seed=config.seed)
        if not isinstance(data, Dataset):
            raise ValueError(
                f"population trials need tensor data, but {workload.name} gives Datasets; "
                "set execution.population: 1"
            )
        self.data = Dataset(
            x_train=data.x_train.to(self.device),
            y_train=data.y_train.to(self.device),
            x_val=data.x_val.to(self.device),
            y_val=data.y_val.to(self.device),
        )
        self.model = workload.build_model(seed=config.seed).to(self.device)
        self.stack = Stack(
            self.model, k, exclude=config.exclude, only=config.only, lr_mult=config.lr_mult
        )
        self.optimizer = PopulationOptimizer(
            self.stack,
            optimizer=config.optimizer,
            method=method,
            momentum=config.momentum,
            nesterov=config.nesterov,
            betas=config.betas,
        )
        self.members: list[Member | None] = [None] * k
        self.n = data.x_train.shape[0]
        self.steps_per_epoch = -(-self.n // config.batch_size)
        self._copies: dict[int, nn.Module] = {}
        self.step_times_s: list[float] = []
        self._autocast = torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"
        )

    # -- members -------------------------------------------------------------------------------

    def add(self, slot: int, *, l1: float, l2: float, lr: float) -> None:
        """A new member in ``slot``, from the initial weights, at its epoch 0."""
        c = self.config
        self.stack.reset(slot)
        self.optimizer.set_member(slot, lr=lr, l1=l1, l2=l2)
        schedule = Schedule(
            c.scheduler, epochs=c.epochs, steps_per_epoch=self.steps_per_epoch, maximize=c.maximize
        )
        generator = torch.Generator().manual_seed(c.seed)
        self.members[slot] = Member(l1=l1, l2=l2, lr=lr, schedule=schedule, generator=generator)

    def remove(self, slot: int) -> None:
        """The slot's member leaves; the slot trains nothing until a new one is added."""
        self.members[slot] = None
        self.optimizer.lr[slot] = 0

    def free_slots(self) -> list[int]:
        return [i for i, m in enumerate(self.members) if m is None]

    def active(self) -> list[int]:
        return [i for i, m in enumerate(self.members) if m is not None]

    # -- one epoch of every member -----------------------------------------------------------

    def epoch(self) -> dict[int, dict[str, float]]:
        """Train every member one epoch (each its own next one) and evaluate it: the metrics
        by slot, as a single trial's loop gives them after an epoch."""
        slots = self.active()
        if not slots:
            return {}
        members = [m for m in self.members if m is not None]
        orders = {i: torch.randperm(self.n, generator=m.generator) for i, m in self._items()}
        shared = len({m.epoch for m in members}) == 1
        active = torch.tensor(
            [1.0 if m is not None else 0.0 for m in self.members], device=self.device
        )
        losses = torch.zeros(self.stack.k, device=self.device)
        self.model.train()
        started = time.perf_counter()
        for start in range(0, self.n, self.config.batch_size):
            x, y = self._batch(orders, start, shared)
            losses += self._step(x, y, shared, active).detach().float()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # once an epoch: a step's time is the mean
        self.step_times_s.append((time.perf_counter() - started) / self.steps_per_epoch)
        metrics = self._evaluate(slots)
        mean_losses = (losses / self.steps_per_epoch).tolist()  # one transfer for everyone
        step_ms = 1000 * _median(self.step_times_s)
        for slot in slots:
            member = self.members[slot]
            assert member is not None
            metrics[slot]["train_loss"] = mean_losses[slot]
            metrics[slot]["step_time_ms"] = step_ms
            member.epoch += 1
            member.history.append(metrics[slot])
            if member.schedule.spec.name == "plateau":
                member.schedule.after_epoch(metrics[slot].get(self.config.monitor, math.nan))
        return metrics

    def step_once(self) -> None:
        """One training step of every member on the first batch, nothing recorded (to
        measure what a step costs)."""
        orders = {
            i: torch.randperm(self.n, generator=torch.Generator().manual_seed(0))
            for i, _ in self._items()
        }
        active = torch.ones(self.stack.k, device=self.device)
        x, y = self._batch(orders, 0, shared=True)
        self._step(x, y, True, active)

    def _items(self) -> list[tuple[int, Member]]:
        return [(i, m) for i, m in enumerate(self.members) if m is not None]

    def _batch(
        self, orders: dict[int, torch.Tensor], start: int, shared: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        end = start + self.config.batch_size
        if shared:  # every member reads the same rows: one batch for all
            index = next(iter(orders.values()))[start:end].to(self.device)
            return self.data.x_train[index], self.data.y_train[index]
        fallback = next(iter(orders.values()))
        rows = [orders.get(i, fallback)[start:end] for i in range(self.stack.k)]
        index = torch.stack(rows).to(self.device)  # [K, B]
        return self.data.x_train[index], self.data.y_train[index]

    def _step(
        self, x: torch.Tensor, y: torch.Tensor, shared: bool, active: torch.Tensor
    ) -> torch.Tensor:
        stack, model, workload = self.stack, self.model, self.workload

        def loss_of(params: Any, buffers: Any, xb: torch.Tensor, yb: torch.Tensor) -> Any:
            return workload.loss(functional_call(model, (params, buffers), (xb,)), yb)

        in_data = None if shared else 0
        for leaf in stack.leaves():
            if leaf.grad is not None:
                leaf.grad.zero_()  # kept from step to step: no allocation
        with self._autocast:
            losses: torch.Tensor = vmap(
                loss_of, in_dims=(0, 0, in_data, in_data), randomness="different"
            )(stack.params, stack.buffers, x, y)
        (losses * active).sum().backward()  # type: ignore[no-untyped-call]
        if self.config.clip_grad_norm is not None:
            self._clip(self.config.clip_grad_norm)
        self.optimizer.step(self._factors())
        for m in self.members:
            if m is not None:
                m.schedule.step += 1
        return losses

    def _factors(self) -> torch.Tensor | float:
        """Each member's lr multiple now (a number when the schedule keeps the lr)."""
        if self.config.scheduler.name == "none" and not self.config.scheduler.warmup_epochs:
            return 1.0
        factors = [m.schedule.factor() if m is not None else 0.0 for m in self.members]
        return torch.tensor(factors, dtype=self.optimizer.lr.dtype).to(self.device)

    @torch.no_grad()
    def _clip(self, max_norm: float) -> None:
        """Each member's data gradient to ``max_norm`` (as ``Regularizer.clip_grad_norm_``
        does: the norm of the per-tensor norms, as torch's; the penalty is added inside the
        optimizer's step, after this)."""
        k = self.stack.k
        grads = [leaf.grad for leaf in self.stack.leaves() if leaf.grad is not None]
        norms = torch.stack([torch.linalg.vector_norm(g.reshape(k, -1), dim=1) for g in grads])
        total = torch.linalg.vector_norm(norms, dim=0)
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.reshape(-1, *[1] * (g.ndim - 1)))

    @torch.no_grad()
    def _evaluate(self, slots: list[int]) -> dict[int, dict[str, float]]:
        """Every member's validation and regularization metrics, as the single-trial loop
        records them. Where the workload scores the model's outputs alone (``evaluate`` not
        overridden), one vmapped forward serves all; with the default metrics (its loss, and
        accuracy for a classifier) the numbers come back in one transfer per metric (a
        transfer per member and metric would make a GPU wait on each), else each member's
        outputs go to ``metrics_of``; a workload that reads the model itself is evaluated on
        a module per member."""
        workload, data, stack = self.workload, self.data, self.stack
        self.model.eval()
        columns: dict[str, list[float]] = {}
        metrics: dict[int, dict[str, float]] = {slot: {} for slot in slots}
        if type(workload).evaluate is Workload.evaluate:

            def forward(params: Any, buffers: Any) -> Any:
                return functional_call(self.model, (params, buffers), (data.x_val,))

            with self._autocast:
                outputs = vmap(forward, randomness="different")(stack.params, stack.buffers)
                if type(workload).metrics_of is not Workload.metrics_of:
                    for slot in slots:
                        metrics[slot] = workload.metrics_of(outputs[slot], data.y_val)
                else:
                    losses = vmap(workload.loss, in_dims=(0, None))(outputs, data.y_val)
                    columns["val_loss"] = losses.tolist()
                    if workload.task == "classification":
                        hits = outputs.argmax(dim=-1) == data.y_val
                        columns["val_accuracy"] = hits.float().mean(dim=-1).tolist()
        else:
            for slot in slots:
                module = stack.member_module(slot, self._copies.get(slot))
                self._copies[slot] = module
                module.eval()
                with self._autocast:
                    metrics[slot] = workload.evaluate(module, data.x_val, data.y_val)
        columns.update(stack.regularization_metrics())
        for slot in slots:
            metrics[slot].update({name: values[slot] for name, values in columns.items()})
        return metrics

    def member_model(self, slot: int) -> nn.Module:
        """A module with the member's trained weights (for its artifact)."""
        return self.stack.member_module(slot)


def _median(values: list[float]) -> float:
    ordered = sorted(values[-200:])
    return ordered[len(ordered) // 2] if ordered else math.nan
