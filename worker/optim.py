"""The built-in loop's optimizer: parameter groups with per-pattern learning rates, the torch
optimizer of the spec's table row, and the learning-rate schedule.

Schedules act per optimizer step on every group's ``lr`` (which the ``decoupled`` and
``proximal`` methods read at each step, so they follow the schedule too):

- a linear warmup over ``warmup_epochs`` from ``lr/steps`` to ``lr``, then
- ``none``: ``lr``; ``cosine``: down to ``min_lr_ratio·lr`` at the last step; ``step``:
  ``× gamma`` every ``step_epochs`` after the warmup; ``plateau``: ``× gamma`` once the
  monitored metric has not improved for ``patience`` epochs (it acts at epoch ends);
- ``onecycle``: torch's OneCycleLR, its rise ``warmup_epochs`` long (30 % of the run without
  one), peaking at each group's ``lr``; momentum and betas are not cycled (the spec's hold).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from regcore.regularizers import OPTIMIZERS, Regularizer
from regcore.spec import SCHEDULES, SchedulerSpec


def lr_multipliers(model: nn.Module, lr_mult: Mapping[str, float]) -> dict[str, float]:
    """Each trainable parameter's lr multiplier: that of the first ``lr_mult`` name pattern
    it matches, else 1. A pattern that matches no trainable parameter is refused."""
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    multipliers, matched = {}, set()
    for name in names:
        pattern = next((q for q in lr_mult if fnmatch.fnmatchcase(name, q)), None)
        if pattern is not None:
            matched.add(pattern)
        multipliers[name] = 1.0 if pattern is None else lr_mult[pattern]
    unused = [q for q in lr_mult if q not in matched]
    if unused:
        raise ValueError(
            f"optimizer.lr_mult patterns {unused} match no trainable parameter; the model's "
            f"parameters are named like {', '.join(names[:6])}"
        )
    return multipliers


def param_groups(
    reg: Regularizer, model: nn.Module, *, lr: float, lr_mult: Mapping[str, float]
) -> list[dict[str, Any]]:
    """``reg.param_groups()``, each split by the lr multiplier of its parameters
    (:func:`lr_multipliers`: that group's lr is ``lr × multiplier``)."""
    if not lr_mult:
        return [{**group, "lr": lr} for group in reg.param_groups()]
    multipliers = lr_multipliers(model, lr_mult)
    names = {id(p): name for name, p in model.named_parameters()}
    groups = []
    for group in reg.param_groups():
        by_mult: dict[float, list[torch.Tensor]] = {}
        for p in group["params"]:
            by_mult.setdefault(multipliers[names[id(p)]], []).append(p)
        for mult, params in by_mult.items():
            groups.append({**group, "params": params, "lr": lr * mult})
    return groups


def make_optimizer(
    groups: list[dict[str, Any]], *, name: str, lr: float, options: Mapping[str, Any]
) -> torch.optim.Optimizer:
    """The torch optimizer of ``name``'s row in :data:`~regcore.regularizers.OPTIMIZERS`,
    with the ``options`` that row takes (``momentum``, ``nesterov``, ``betas``; None: torch's
    default)."""
    kind = OPTIMIZERS.get(name)
    if kind is None:
        *rest, last = OPTIMIZERS
        raise ValueError(f"unknown optimizer {name!r}; choose {', '.join(rest)} or {last}")
    given = {o: options[o] for o in kind.options if options.get(o) is not None}
    # Optimizer's own __init__ takes no lr; every row's class does.
    build: Callable[..., torch.optim.Optimizer] = kind.torch_class
    return build(groups, lr=lr, **given)


class Schedule:
    """The lr multiple of every optimizer step (see the module's docstring), without an
    optimizer: what each member of a population follows; :class:`LrSchedule` applies it to
    a torch optimizer. ``onecycle`` is torch's own, there."""

    def __init__(
        self, spec: SchedulerSpec, *, epochs: int, steps_per_epoch: int, maximize: bool = False
    ) -> None:
        self.spec = spec
        self.per_epoch = max(1, steps_per_epoch)
        self.total = epochs * self.per_epoch
        self.warm = min(round(spec.warmup_epochs * self.per_epoch), self.total - 1)
        self._maximize = maximize
        self._best = -math.inf if maximize else math.inf
        self._bad_epochs = 0
        self._plateau = 1.0
        self.step = 0  # optimizer steps taken

    def factor(self, step: int | None = None) -> float:
        """The multiple of the lr for optimizer step ``step`` (0-based; the next by default)."""
        step = self.step if step is None else step
        if step < self.warm:
            return (step + 1) / self.warm
        return _AFTER_WARMUP[self.spec.name](self, step - self.warm)

    def _cosine(self, after: int) -> float:
        progress = after / max(1, self.total - self.warm - 1)
        low = self.spec.min_lr_ratio or 0.0
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    def _step(self, after: int) -> float:
        assert self.spec.step_epochs is not None  # the spec requires it
        epochs_after = after // self.per_epoch
        return float((self.spec.gamma or 0.1) ** (epochs_after // self.spec.step_epochs))

    def _held(self, after: int) -> float:
        return self._plateau  # none: 1; plateau: what the epochs so far decided

    def after_epoch(self, monitored: float) -> bool:
        """Plateau: count epochs without a better ``monitored`` value (the first objective);
        whether the lr has just been cut."""
        if self.spec.name != "plateau" or not math.isfinite(monitored):
            return False
        better = monitored > self._best if self._maximize else monitored < self._best
        if better:
            self._best, self._bad_epochs = monitored, 0
            return False
        self._bad_epochs += 1
        if self._bad_epochs > (10 if self.spec.patience is None else self.spec.patience):
            self._plateau *= self.spec.gamma or 0.1
            self._bad_epochs = 0
            return True
        return False


# Each schedule's lr multiple after the warmup (steps since it): a row of SCHEDULES each.
# onecycle is torch's OneCycleLR, which LrSchedule runs instead; before it starts, it holds.
_AFTER_WARMUP: dict[str, Callable[[Schedule, int], float]] = {
    "none": Schedule._held,
    "cosine": Schedule._cosine,
    "step": Schedule._step,
    "plateau": Schedule._held,
    "onecycle": Schedule._held,
}
if _AFTER_WARMUP.keys() != SCHEDULES.keys():
    raise ImportError(f"schedules without an implementation: {SCHEDULES.keys() - _AFTER_WARMUP}")


class LrSchedule:
    """Sets every group's lr before each optimizer step; see the module's docstring."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        spec: SchedulerSpec,
        *,
        epochs: int,
        steps_per_epoch: int,
        maximize: bool = False,
    ) -> None:
        self._optimizer = optimizer
        self._schedule = Schedule(
            spec, epochs=epochs, steps_per_epoch=steps_per_epoch, maximize=maximize
        )
        self._base = [float(g["lr"]) for g in optimizer.param_groups]
        self._onecycle: torch.optim.lr_scheduler.OneCycleLR | None = None
        if spec.name == "onecycle":
            total, warm = self._schedule.total, self._schedule.warm
            # The spec's momentum and betas hold: torch would cycle them too by default.
            self._onecycle = torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=self._base,
                total_steps=total,
                pct_start=warm / total if warm else 0.3,
                cycle_momentum=False,
            )
        else:
            self._apply()

    def factor(self, step: int) -> float:
        """The multiple of each group's lr for optimizer step ``step`` (0-based)."""
        return self._schedule.factor(step)

    def after_step(self) -> None:
        self._schedule.step += 1
        if self._onecycle is not None:
            if self._schedule.step < self._schedule.total:  # OneCycleLR stops at its last
                self._onecycle.step()
            return
        self._apply()

    def after_epoch(self, monitored: float) -> None:
        """Plateau: count epochs without a better ``monitored`` value (the first objective)."""
        if self._schedule.after_epoch(monitored):
            self._apply()

    def _apply(self) -> None:
        scale = self._schedule.factor()
        for group, base in zip(self._optimizer.param_groups, self._base, strict=True):
            group["lr"] = base * scale
