"""What a finished (or running) sweep found, as plain rows for tables and reports.

Reads only the study: the values a trial trained with are its user attributes (``method``,
``method_class``, ``l1``, ``l2``, ``lr``), so fixed and unsampled dimensions show too, and
its other searched parameters (``search_space.params``, a searched lr) are its Optuna
parameters. The search's results are its trials trained from scratch
(:data:`regcore.trial_kinds.RULES`): a path's warm-started points are steps towards them,
and a confirmation's trials, which live in a study of their own, are
:mod:`regcore.confirm`'s to show.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from regcore.trial_kinds import FAIL_REASON, rules_of

#: Optuna parameters that say which regularizer and how much (the rest are "other" ones).
REGULARIZER_PARAMS = ("method_class", "method", "l1", "l2")


@dataclass(frozen=True, kw_only=True)
class TrialRow:
    number: int
    label: str
    method: str
    method_class: str
    l1: float
    l2: float
    lr: float
    values: tuple[float, ...]
    sparsity: float | None
    baseline: bool
    params: dict[str, Any] = field(default_factory=dict)  # the other searched parameters

    def regularizer_line(self) -> str:
        """What to paste into a training script to use this trial's setting."""
        return regularizer_line(l1=self.l1, l2=self.l2, method=self.method)

    def paste(self) -> list[str]:
        """The setting, ready to paste: the Regularizer line and the other searched values."""
        return paste_lines(l1=self.l1, l2=self.l2, method=self.method, params=self.params)


def regularizer_line(*, l1: float, l2: float, method: str) -> str:
    """What to paste into a training script to use a setting."""
    return f'Regularizer(model, l1={l1:g}, l2={l2:g}, method="{method}")'


def params_text(params: Mapping[str, Any]) -> str:
    """``lr=0.001, dropout=0.2``: searched values as keyword arguments."""
    return ", ".join(f"{k}={_value(v)}" for k, v in params.items())


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def paste_lines(
    *, l1: float, l2: float, method: str, params: Mapping[str, Any] | None = None
) -> list[str]:
    """A setting as lines for a training script: the Regularizer (none when λ₁ = λ₂ = 0) and
    the other parameters it was found with."""
    lines = []
    if l1 or l2:
        lines.append(f"reg = {regularizer_line(l1=l1, l2=l2, method=method)}")
    else:
        lines.append("# no Regularizer: λ₁ = λ₂ = 0")
    if params:
        lines.append(f"# with {params_text(params)}")
    return lines


def other_params(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's searched values besides the regularizer's (lr, search_space.params)."""
    return {k: v for k, v in trial.params.items() if k not in REGULARIZER_PARAMS}


def setting_of(trial: FrozenTrial) -> dict[str, Any]:
    """What ``trial`` trained with: method, class, λ₁, λ₂ and lr (recorded, else sampled)."""
    attrs: dict[str, Any] = trial.user_attrs
    return {
        "method": str(attrs.get("method", trial.params.get("method", "?"))),
        "method_class": str(attrs.get("method_class", trial.params.get("method_class", "?"))),
        "l1": float(attrs.get("l1", trial.params.get("l1", 0.0))),
        "l2": float(attrs.get("l2", trial.params.get("l2", 0.0))),
        "lr": float(attrs.get("lr", trial.params.get("lr", math.nan))),
    }


def _row(trial: FrozenTrial, label: str) -> TrialRow:
    return TrialRow(
        number=trial.number,
        label=label,
        values=tuple(trial.values or ()),
        sparsity=trial.user_attrs.get("sparsity"),
        baseline=rules_of(trial).baseline,
        params=other_params(trial),
        **setting_of(trial),
    )


def search_results(study: optuna.Study) -> list[FrozenTrial]:
    """The search's COMPLETE trials trained from scratch (the λ = 0 baseline included)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in complete if rules_of(t).from_scratch]


def ranked(study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """``trials`` best first (single objective), ties by trial number."""
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return sorted(trials, key=lambda t: (sign * _value_of(t), t.number))


def _value_of(trial: FrozenTrial) -> float:
    return float(trial.value) if trial.value is not None else math.inf


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The search's best trial trained from scratch (single objective), or None."""
    found = ranked(study, search_results(study))
    return found[0] if found else None


def best_rows(study: optuna.Study) -> list[TrialRow]:
    """Single objective: the best trial, the best of each method class, and the λ = 0
    baseline(s). Two objectives: the Pareto front. Trials trained from scratch only."""
    complete = search_results(study)
    if not complete:
        return []
    if len(study.directions) > 1:
        front = {t.number for t in study.best_trials}
        return [_row(t, "pareto") for t in complete if t.number in front]
    order = ranked(study, complete)
    rows = [_row(order[0], "best")]
    classes: dict[str, FrozenTrial] = {}
    for t in order:
        if not rules_of(t).baseline:
            classes.setdefault(_class_of(t), t)
    rows += [_row(t, c) for c, t in sorted(classes.items())]
    rows += [_row(t, "baseline (λ=0)") for t in complete if rules_of(t).baseline]
    return rows


def _class_of(trial: FrozenTrial) -> str:
    """A trial's method class; a trial from before classes existed, its method."""
    attrs = trial.user_attrs
    return str(attrs.get("method_class", attrs.get("method", "?")))


#: Study user attributes of the cost probe: ``cost_probe:<device>`` → ms per step by method.
COST_PROBE_PREFIX = "cost_probe:"


def method_costs(study: optuna.Study) -> dict[str, dict[str, float]]:
    """The cost probes a study keeps: median ms per training step of each method (and of
    ``none``, no regularizer), per device (``cpu``, ``cuda NVIDIA H200``)."""
    attrs = study.user_attrs
    return {
        key.removeprefix(COST_PROBE_PREFIX): dict(value)
        for key, value in attrs.items()
        if key.startswith(COST_PROBE_PREFIX)
    }


def failure_reasons(study: optuna.Study, *, most: int = 5) -> list[tuple[str, int]]:
    """Why the study's trials failed: each ``fail_reason`` without where it was raised
    (`` (at file:line)``), most common first with how many trials failed for it; past
    ``most`` reasons, the rest are counted together as "other reasons"."""
    reasons = Counter(
        _reason(t) for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    )
    common = reasons.most_common(most)
    rest = sum(reasons.values()) - sum(n for _, n in common)
    return common + ([("other reasons", rest)] if rest else [])


def _reason(trial: FrozenTrial) -> str:
    text = str(trial.user_attrs.get(FAIL_REASON) or "no reason recorded")
    first = (text.strip().splitlines() or ["no reason recorded"])[0]
    reason = first.split(" (at ")[0].strip()
    return reason if len(reason) <= 200 else reason[:197] + "..."
