"""How each trial of a declarative workload trains: the optimizer (with per-group learning
rates), the schedule, clipping, data loading, and which parameters are regularized.

A training function (your own loop) sets these itself; of this section it reads only
``epochs``, ``seed`` and ``device`` (and the optimizer's ``lr``, as ``ctx.lr``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field, field_validator
from pydantic_core import InitErrorDetails

from regcore.regularizers import OPTIMIZERS, OptimizerName, optimizers_taking
from regcore.spec._base import SpecModel
from regcore.spec._problems import listing, problem

Seed = Annotated[int, Field(ge=0, lt=2**32)]
_Beta = Annotated[float, Field(ge=0, lt=1)]
_PENALTY = "regularization is what the sweep searches"
_Pattern = Annotated[str, Field(min_length=1)]


class OptimizerSpec(SpecModel):
    """The optimizer and its base learning rate: ``{name: sgd, lr: 0.1, momentum: 0.9}``.

    ``momentum`` is for ``sgd`` and ``rmsprop``, ``betas`` for ``adam``; unset, each takes
    the optimizer's default.
    """

    misplaced: ClassVar[dict[str, str]] = {
        "weight_decay": f"{_PENALTY}: put λ₂ in search_space.l2 (method weight_decay applies "
        "it as the optimizer's decay)",
    }

    # The names, and which of the options below each takes: regcore.regularizers.OPTIMIZERS
    # (the docstring above is the JSON schema's description, so it stays as published).
    name: OptimizerName = "adam"
    lr: float = Field(default=1e-3, gt=0, allow_inf_nan=False)
    momentum: float | None = Field(default=None, ge=0, lt=1)
    nesterov: bool | None = None
    betas: tuple[_Beta, _Beta] | None = Field(default=None, strict=False)  # a JSON list
    # Per-parameter learning rates: the first name pattern that matches scales the base lr.
    lr_mult: dict[_Pattern, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )

    def _problems(self) -> list[InitErrorDetails]:
        taken = OPTIMIZERS[self.name].options
        details = []
        for option in _OPTIMIZER_OPTIONS:
            value = getattr(self, option)
            if value is not None and option not in taken:
                shown = list(value) if isinstance(value, tuple) else value
                details.append(problem((option,), _not_taken(option, self.name), shown))
        if self.nesterov and not self.momentum and "nesterov" in taken:
            text = "Nesterov momentum needs momentum > 0; set momentum, e.g. 0.9"
            details.append(problem(("nesterov",), text, self.nesterov))
        return details


# Every option some optimizer takes (each a field of OptimizerSpec), in the table's order.
_OPTIMIZER_OPTIONS = tuple(dict.fromkeys(o for k in OPTIMIZERS.values() for o in k.options))

# An option set for an optimizer that does not take it, in words: who takes it ({takers}, from
# the table) and what to write instead ({other}: an option {name} takes; {example}: a value).
_NOT_TAKEN = {
    "momentum": ("momentum is for {takers}", "for {name} set {other}, e.g. {example}", "it"),
    "nesterov": ("nesterov is for {takers}", "for {name} set {other}, e.g. {example}", "it"),
    "betas": ("betas are for {takers}", "remove them, or set {other} for {name}", "them"),
}
_EXAMPLES = {"momentum": "0.9", "betas": "[0.9, 0.999]", "nesterov": "true"}


def _not_taken(option: str, name: str) -> str:
    takers = optimizers_taking(option)
    who = f"{takers[0]} only" if len(takers) == 1 else listing(takers, last="and")
    wrong, fix, pronoun = _NOT_TAKEN[option]
    others = OPTIMIZERS[name].options
    if not others:
        return f"{wrong.format(takers=who)}; remove {pronoun}"
    fix = fix.format(name=name, other=others[0], example=_EXAMPLES[others[0]])
    return f"{wrong.format(takers=who)}; {fix}"


@dataclass(frozen=True, kw_only=True)
class ScheduleKind:
    """A learning-rate schedule a spec may name (the worker's loop implements each row:
    worker/optim.py refuses to import without every one)."""

    name: str
    options: tuple[str, ...] = ()  # what it takes beside warmup_epochs
    required: tuple[str, ...] = ()  # what it cannot go without
    population: bool = True  # whether population trials can follow it (one lr multiple a step)


SCHEDULES: dict[str, ScheduleKind] = {
    row.name: row
    for row in (
        ScheduleKind(name="none"),
        ScheduleKind(name="cosine", options=("min_lr_ratio",)),
        ScheduleKind(name="step", options=("step_epochs", "gamma"), required=("step_epochs",)),
        ScheduleKind(name="onecycle", population=False),  # torch's OneCycleLR, per optimizer
        ScheduleKind(name="plateau", options=("gamma", "patience")),
    )
}
SchedulerName = Literal["none", "cosine", "step", "onecycle", "plateau"]  # SCHEDULES' names
assert set(get_args(SchedulerName)) == set(SCHEDULES), "SchedulerName lists SCHEDULES' rows"
_SCHEDULE_EXAMPLES = {"step_epochs": "{name: step, step_epochs: 10}"}


class SchedulerSpec(SpecModel):
    """The learning-rate schedule: ``{name: cosine, warmup_epochs: 1}``.

    ``none``, ``cosine`` (to ``min_lr_ratio``·lr at the end), ``step`` (× ``gamma`` every
    ``step_epochs``), ``onecycle`` (torch's OneCycleLR: its rise takes ``warmup_epochs``, else
    30 % of the run) or ``plateau`` (× ``gamma`` after ``patience`` epochs without a better
    first objective). ``warmup_epochs`` ramps the lr linearly from 0 first (with ``none``, then
    holds it). Steps follow the optimizer's steps, so the schedule is smooth within an epoch.
    """

    name: SchedulerName = "none"
    warmup_epochs: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    min_lr_ratio: float | None = Field(default=None, ge=0, lt=1)
    step_epochs: int | None = Field(default=None, ge=1)
    gamma: float | None = Field(default=None, gt=0, lt=1)
    patience: int | None = Field(default=None, ge=0)

    def _problems(self) -> list[InitErrorDetails]:
        kind = SCHEDULES[self.name]
        details = []
        for option in dict.fromkeys(o for row in SCHEDULES.values() for o in row.options):
            value = getattr(self, option)
            if value is not None and option not in kind.options:
                users = [row.name for row in SCHEDULES.values() if option in row.options]
                text = f"{option} is for the {listing(users, last='and')} schedule; remove it"
                details.append(problem((option,), text, value))
        for option in kind.required:
            if getattr(self, option) is None:
                example = _SCHEDULE_EXAMPLES[option]
                text = f"the {self.name} schedule needs {option}, e.g. {example}"
                details.append(problem((option,), text))
        return details


class EarlyStoppingSpec(SpecModel):
    """End a trial once its first objective has not improved by more than ``min_delta`` for
    ``patience`` epochs: ``{patience: 10, min_delta: 0.0, restore_best: true}``. With
    ``restore_best`` (the default) the trial's result — the value told to Optuna, its
    metrics, the weights it keeps — is its best epoch's; without, its last epoch's."""

    patience: int = Field(ge=1, le=100_000)
    min_delta: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    restore_best: bool = True


class TrainingSpec(SpecModel):
    """How each trial trains: ``{epochs: 10, batch_size: 128, seed: 0, device: auto,
    precision: fp32}`` (``device``: auto, cpu, cuda or cuda:N; ``precision``: fp32 or bf16).

    A trial's objective is its last epoch's metrics, or with ``early_stopping`` (see
    :class:`EarlyStoppingSpec`) its best epoch's.
    """

    # Each epoch is a pruner step and a stored intermediate value: bounded, as work must be.
    epochs: int = Field(default=10, ge=1, le=10_000)
    batch_size: int = Field(default=128, ge=1, le=10_000_000)
    seed: Seed = 0
    device: str = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    # The data gradient's norm is clipped to this; the penalty's gradient never is.
    clip_grad_norm: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # DataLoader worker processes, for workloads whose data are Datasets (not tensors).
    num_workers: int = Field(default=0, ge=0, le=64)
    early_stopping: EarlyStoppingSpec | None = None

    @field_validator("device")
    @classmethod
    def _device(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
            raise ValueError(f"use auto, cpu, cuda or cuda:N (e.g. cuda:1), but got {device!r}")
        return device

    def _problems(self) -> list[InitErrorDetails]:
        if self.scheduler.warmup_epochs >= self.epochs:
            text = (
                f"the warmup must end before training does: warmup_epochs < epochs "
                f"({self.epochs}), but got {self.scheduler.warmup_epochs:g}"
            )
            return [problem(("scheduler", "warmup_epochs"), text, self.scheduler.warmup_epochs)]
        return []


class RegularizeSpec(SpecModel):
    """Which parameters the Regularizer sees: ``{exclude: ["*.bias"], only: ["head.*"]}``.

    Name patterns (fnmatch). Unset, every trainable parameter with ``ndim ≥ 2`` is regularized
    (biases and normalization weights are not); ``exclude`` replaces that rule; ``only``
    regularizes the matching parameters alone. Frozen parameters never are.
    """

    exclude: list[_Pattern] | None = None
    only: list[_Pattern] | None = Field(default=None, min_length=1)

    @property
    def options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~regcore.regularizers.Regularizer`."""
        return {"exclude": self.exclude, "only": self.only}


class ExecutionSpec(SpecModel):
    """How a worker runs the trials: ``{population: 16}`` trains 16 trials at once in one
    vmapped pass (population trials: the same method and data order, each its own λ₁, λ₂ and
    lr, each told as its own trial); ``auto`` picks K from the model's size and the device's
    memory and says what it picked; 1 (the default) runs one trial at a time."""

    population: int | Literal["auto"] = 1

    @field_validator("population", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int | str:
        whole = isinstance(value, int) and not isinstance(value, bool)
        if value == "auto" or (whole and 1 <= value <= 256):
            return value  # type: ignore[no-any-return]
        raise ValueError(f"write a whole number from 1 to 256, or auto, but got {value!r}")


def loop_checks(
    *,
    optimizer: OptimizerSpec,
    training: TrainingSpec,
    execution: ExecutionSpec,
    methods: tuple[str, ...],
    own_loop: bool,
) -> list[InitErrorDetails]:
    """Rules between the loop's settings and the rest of a valid spec: ``own_loop`` is a
    training function's (it builds its optimizer and runs its epochs itself)."""
    details = []
    if optimizer.name == "adamw" and "weight_decay" in methods:
        text = (
            "method weight_decay is coupled decay (the gradient of λ₂·Σw²) and AdamW decays "
            "decoupled; use optimizer adam, or method decoupled for AdamW-style decay"
        )
        details.append(problem(("optimizer", "name"), text, optimizer.name))
    if execution.population != 1 and own_loop:
        text = (
            "a training function is not vectorized (it owns its loop): it runs one trial at "
            "a time; set population: 1, or sweep a workload whose loop regsweep owns"
        )
        details.append(problem(("execution", "population"), text, execution.population))
    schedule = training.scheduler.name
    if execution.population != 1 and not SCHEDULES[schedule].population:
        able = listing([row.name for row in SCHEDULES.values() if row.population], last="or")
        text = f"population trials schedule with {able}; not {schedule}"
        details.append(problem(("training", "scheduler", "name"), text, schedule))
    if execution.population != 1 and training.early_stopping is not None:
        text = (
            "population trials train every member for all its epochs; remove early_stopping "
            "or set execution.population: 1"
        )
        shown = training.early_stopping.model_dump()
        details.append(problem(("training", "early_stopping"), text, shown))
    if not own_loop:
        return details
    loop = "a training function runs its own loop"
    for section, model, names in (
        ("optimizer", optimizer, ("name", "momentum", "nesterov", "betas", "lr_mult")),
        ("training", training, ("batch_size", "precision", "clip_grad_norm", "num_workers")),
        ("training", training, ("early_stopping",)),
        ("training", training, ("scheduler",)),
    ):
        for name in names:
            value = getattr(model, name)
            if value != type(model).model_fields[name].get_default(call_default_factory=True):
                text = (
                    f"{loop}: set {section}.{name} in it (only optimizer.lr reaches it, as "
                    "ctx.lr; and training.epochs, seed and device); remove it here"
                )
                shown = value.model_dump() if isinstance(value, SpecModel) else value
                details.append(problem((section, name), text, shown))
    return details
