"""A spec in Optuna's terms: the suggestions of one trial, the sampler and the pruner.

The space is conditional: a method that cannot express λ₁ (``weight_decay``) never samples
``l1``. The values a trial actually trains with are recorded as user attributes too (``l1``,
``l2``, ``method``, ``lr``), so fixed and unsampled dimensions show in every report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from regcore.spec._algorithms import PRUNERS, SAMPLERS
from regcore.spec._params import ParamChoices, ParamRange, ParamValue
from regcore.spec._space import Choices, Range, SearchSpace
from regcore.spec._sweep import SweepSpec


@dataclass(frozen=True, kw_only=True)
class TrialPoint:
    """What one trial trains with."""

    method: str
    l1: float
    l2: float
    lr: float
    params: dict[str, Any] = field(default_factory=dict)  # search_space.params' values

    def as_attrs(self) -> dict[str, Any]:
        return {"method": self.method, "l1": self.l1, "l2": self.l2, "lr": self.lr}


def _suggest_value(trial: optuna.Trial, name: str, value: float | Range | Choices) -> float:
    if isinstance(value, Range):
        return trial.suggest_float(name, value.low, value.high, log=value.log)
    if isinstance(value, Choices):
        return float(trial.suggest_categorical(name, value.choices))
    return value


def suggest(trial: optuna.Trial, spec: SweepSpec) -> TrialPoint:
    """Sample one point of ``spec``'s space on ``trial``."""
    space = spec.search_space
    methods = space.methods
    method = str(trial.suggest_categorical("method", methods)) if len(methods) > 1 else methods[0]
    l1 = _suggest_value(trial, "l1", space.l1) if SearchSpace.samples_l1(method) else 0.0
    l2 = _suggest_value(trial, "l2", space.l2)
    lr = spec.optimizer.lr if space.lr is None else _suggest_value(trial, "lr", space.lr)
    params = {name: _suggest_param(trial, name, value) for name, value in space.params.items()}
    return TrialPoint(method=method, l1=l1, l2=l2, lr=lr, params=params)


def _suggest_param(trial: optuna.Trial, name: str, value: ParamValue) -> Any:
    if isinstance(value, ParamRange):
        if value.int:
            return trial.suggest_int(name, int(value.low), int(value.high), log=value.log)
        return trial.suggest_float(name, value.low, value.high, log=value.log)
    if isinstance(value, ParamChoices):
        return trial.suggest_categorical(name, value.choices)
    return value


def baseline_params(spec: SweepSpec) -> dict[str, Any]:
    """Parameters of the λ₁ = λ₂ = 0 baseline trial, as close as the space allows.

    A log range cannot hold 0, so there the baseline takes the range's low end and the trial
    runner trains with 0 (the ``baseline`` user attribute marks it).
    """
    space = spec.search_space
    params: dict[str, Any] = {}
    if len(space.methods) > 1:
        # A method that applies L1 and L2 both, so the baseline is the same for every method.
        with_l1 = [m for m in space.methods if SearchSpace.samples_l1(m)]
        params["method"] = (with_l1 or list(space.methods))[0]
    for name in ("l1", "l2"):
        value = getattr(space, name)
        if isinstance(value, Range):
            params[name] = value.low
        elif isinstance(value, Choices):
            params[name] = min(value.choices)
    if isinstance(space.lr, Choices):
        params["lr"] = space.lr.choices[0]
    return params


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, without its ``study.stop()`` once the grid is covered.

    ``Study.stop`` works only inside ``optimize()``; with ask/tell it raises from ``tell``.
    The sweep's budget decides when it ends (past the grid, points repeat).
    """

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None


def _grid(spec: SweepSpec) -> dict[str, list[Any]]:
    """Every listed value per dimension. ``weight_decay`` ignores ``l1``, so its points
    repeat once per ``l1`` value: give such a sweep a budget of the distinct points."""
    space = spec.search_space
    grid: dict[str, list[Any]] = {}
    if len(space.methods) > 1:
        grid["method"] = list(space.methods)
    for name in ("l1", "l2", "lr"):
        value = getattr(space, name)
        if isinstance(value, Choices):
            grid[name] = list(value.choices)
    for name, param in space.params.items():
        if isinstance(param, ParamChoices):
            grid[name] = list(param.choices)
    return grid


def create_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    """The spec's sampler (its options passed through as keyword arguments)."""
    s = spec.sampler
    kind = SAMPLERS[s.name]
    if kind.listed_values:  # the grid, without Study.stop() and built from the listed values
        return _GridSampler(_grid(spec), seed=s.seed)
    sampler: Callable[..., optuna.samplers.BaseSampler] = getattr(
        optuna.samplers, kind.optuna_class
    )
    return sampler(seed=s.seed, **s.options)


def create_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """The spec's pruner; epochs are its steps (hyperband: ``max_resource`` =
    ``training.epochs`` unless the spec says otherwise)."""
    kind = PRUNERS[spec.pruner.name]
    pruner: Callable[..., optuna.pruners.BasePruner] = getattr(optuna.pruners, kind.optuna_class)
    return pruner(**kind.keywords(spec, spec.pruner.options))
