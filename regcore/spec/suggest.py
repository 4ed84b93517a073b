"""A spec in Optuna's terms: the suggestions of one trial, the sampler and the pruner.

The space samples the regularizer's class (``method_class``: penalty, decoupled, proximal;
see :func:`regcore.regularizers.method_class`) and runs the cheapest listed method of that
class: the six methods are three regularizers, and re-measuring one point with another
implementation of it teaches the sampler nothing. The space is conditional: a class whose
methods cannot express λ₁ (``weight_decay`` alone) never samples ``l1``.

The λ = 0 baseline trial samples no λ unless the space can say 0: its parameters are what it
trained with, so a sampler never learns from a point it did not train. The values every trial
trains with are its user attributes too (``method``, ``method_class``, ``l1``, ``l2``,
``lr``), so fixed and unsampled dimensions show in every report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from regcore.regularizers import L1_METHODS, NO_REGULARIZER, cheapest
from regcore.spec._algorithms import PRUNERS, SAMPLERS
from regcore.spec._params import ParamChoices, ParamRange, ParamValue
from regcore.spec._space import Choices, Range, can_be_zero
from regcore.spec._sweep import SweepSpec
from regcore.trial_kinds import PINNED_METHOD, rules_of


@dataclass(frozen=True, kw_only=True)
class TrialPoint:
    """What one trial trains with."""

    method: str
    method_class: str
    l1: float
    l2: float
    lr: float
    params: dict[str, Any] = field(default_factory=dict)  # search_space.params' values

    def as_attrs(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "method_class": self.method_class,
            "l1": self.l1,
            "l2": self.l2,
            "lr": self.lr,
        }


def _suggest_value(trial: optuna.Trial, name: str, value: float | Range | Choices) -> float:
    if isinstance(value, Range):
        return trial.suggest_float(name, value.low, value.high, log=value.log)
    if isinstance(value, Choices):
        return float(trial.suggest_categorical(name, value.choices))
    return value


def is_baseline(trial: optuna.Trial | optuna.trial.FrozenTrial) -> bool:
    """Whether ``trial`` is a λ₁ = λ₂ = 0 baseline (the search's, or a confirmation's)."""
    return rules_of(trial).baseline


def suggest(
    trial: optuna.Trial, spec: SweepSpec, *, costs: Mapping[str, float] | None = None
) -> TrialPoint:
    """Sample one point of ``spec``'s space on ``trial``; within the sampled class, the method
    ``costs`` (ms per step, the cost probe's) says is cheapest."""
    space = spec.search_space
    classes = spec.method_classes
    lr = spec.optimizer.lr if space.lr is None else _suggest_value(trial, "lr", space.lr)
    params = {name: _suggest_param(trial, name, value) for name, value in space.params.items()}
    if is_baseline(trial):
        # λ is sampled only where the space holds 0 (so the sampler may learn from it).
        l1, l2 = (
            _suggest_value(trial, n, v) if can_be_zero(v) else 0.0
            for n, v in (("l1", space.l1), ("l2", space.l2))
        )
        if l1 or l2:
            raise ValueError(f"the baseline trial must train with λ = 0, but got {l1=}, {l2=}")
        method = cheapest(space.methods, l1=0.0, costs=costs)
        return TrialPoint(
            method=method, method_class=NO_REGULARIZER, l1=0.0, l2=0.0, lr=lr, params=params
        )
    names = list(classes)
    method_class = (
        str(trial.suggest_categorical("method_class", names)) if len(names) > 1 else names[0]
    )
    candidates = classes[method_class]
    applies_l1 = any(m in L1_METHODS for m in candidates)
    l1 = _suggest_value(trial, "l1", space.l1) if applies_l1 else 0.0
    l2 = _suggest_value(trial, "l2", space.l2)
    pinned = trial.user_attrs.get(PINNED_METHOD)  # a confirmation repeats its trial's method
    if pinned in candidates and (not l1 or pinned in L1_METHODS):
        method = str(pinned)
    else:
        method = cheapest(candidates, l1=l1, costs=costs)
    return TrialPoint(method=method, method_class=method_class, l1=l1, l2=l2, lr=lr, params=params)


def _suggest_param(trial: optuna.Trial, name: str, value: ParamValue) -> Any:
    if isinstance(value, ParamRange):
        if value.int:
            return trial.suggest_int(name, int(value.low), int(value.high), log=value.log)
        return trial.suggest_float(name, value.low, value.high, log=value.log)
    if isinstance(value, ParamChoices):
        return trial.suggest_categorical(name, value.choices)
    return value


def baseline_params(spec: SweepSpec) -> dict[str, Any]:
    """Parameters of the λ₁ = λ₂ = 0 baseline trial: λ only where the space can say 0 (else
    the trial does not sample it), and the grid's first value of the other listed dimensions
    (Optuna's grid sampler needs every one of its parameters fixed on an enqueued trial)."""
    space = spec.search_space
    params: dict[str, Any] = {}
    for name in ("l1", "l2"):
        if can_be_zero(getattr(space, name)) and not isinstance(getattr(space, name), float):
            params[name] = 0.0
    if isinstance(space.lr, Choices):
        params["lr"] = space.lr.choices[0]
    if SAMPLERS[spec.sampler.name].listed_values:
        for name, param in space.params.items():
            if isinstance(param, ParamChoices):
                params[name] = param.choices[0]
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
    """Every listed value per dimension, the classes for the methods. A class that cannot
    express λ₁ (``weight_decay`` alone) ignores ``l1``, so its points repeat once per ``l1``
    value: give such a sweep a budget of the distinct points."""
    space = spec.search_space
    grid: dict[str, list[Any]] = {}
    if len(spec.method_classes) > 1:
        grid["method_class"] = list(spec.method_classes)
    for name in ("l1", "l2", "lr"):
        value = getattr(space, name)
        if isinstance(value, Choices):
            grid[name] = list(value.choices)
    for name, param in space.params.items():
        if isinstance(param, ParamChoices):
            grid[name] = list(param.choices)
    return grid


def create_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    """The spec's sampler (its options passed through as keyword arguments), its randomness
    seeded per trial (:func:`_seed_per_trial`)."""
    s = spec.sampler
    kind = SAMPLERS[s.name]
    if kind.listed_values:  # the grid, without Study.stop() and built from the listed values
        sampler: optuna.samplers.BaseSampler = _GridSampler(_grid(spec), seed=s.seed)
    else:
        build: Callable[..., optuna.samplers.BaseSampler] = kind.load()
        sampler = build(seed=s.seed, **s.options)
    if s.seed is not None:
        _seed_per_trial(sampler, s.seed)
    return sampler


def _seed_per_trial(sampler: optuna.samplers.BaseSampler, seed: int) -> None:
    """Seed ``sampler``'s random draws from ``seed`` and the number of the trial being asked.

    Every worker builds its own sampler from the spec: seeded once, the workers of a sweep
    would draw the same random points (two workers: trials 1 and 2 alike, and so on through
    TPE's random start-up). Seeded from the trial's number, each trial draws its own, and a
    sweep stays reproducible however many workers ask. (Optuna's own remedy for parallel
    studies, ``reseed_rng()``, seeds from the clock.)
    """
    before_trial = sampler.before_trial

    def seeded_before_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        parts = (sampler, *(getattr(sampler, a, None) for a in _INNER_SAMPLERS))
        for i, part in enumerate(parts):
            rng = getattr(part, "_rng", None)
            if rng is not None and hasattr(rng, "rng"):  # Optuna's LazyRandomState
                rng.rng.seed((seed * 1_000_003 + trial.number * 7 + i) % 2**32)
        before_trial(study, trial)

    sampler.before_trial = seeded_before_trial  # type: ignore[method-assign]


#: Where Optuna's samplers keep the sampler of their random (start-up) draws.
_INNER_SAMPLERS = ("_random_sampler", "_independent_sampler")


def create_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """The spec's pruner; epochs are its steps (hyperband: ``max_resource`` =
    ``training.epochs`` unless the spec says otherwise)."""
    kind = PRUNERS[spec.pruner.name]
    pruner: Callable[..., optuna.pruners.BasePruner] = getattr(optuna.pruners, kind.optuna_class)
    return pruner(**kind.keywords(spec, spec.pruner.options))
