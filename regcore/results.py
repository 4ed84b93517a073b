"""What a finished (or running) sweep found, as plain rows for tables and reports.

Reads only the study: the values a trial trained with are its user attributes (``method``,
``method_class``, ``l1``, ``l2``, ``lr``), so fixed and unsampled dimensions show too. The
search's trials only: a confirmation's are :mod:`regcore.confirm`'s to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


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

    def regularizer_line(self) -> str:
        """What to paste into a training script to use this trial's setting."""
        return regularizer_line(l1=self.l1, l2=self.l2, method=self.method)


def regularizer_line(*, l1: float, l2: float, method: str) -> str:
    """What to paste into a training script to use a setting."""
    return f'Regularizer(model, l1={l1:g}, l2={l2:g}, method="{method}")'


def _row(trial: FrozenTrial, label: str) -> TrialRow:
    attrs: dict[str, Any] = trial.user_attrs
    return TrialRow(
        number=trial.number,
        label=label,
        method=str(attrs.get("method", trial.params.get("method", "?"))),
        method_class=str(attrs.get("method_class", trial.params.get("method_class", "?"))),
        l1=float(attrs.get("l1", trial.params.get("l1", 0.0))),
        l2=float(attrs.get("l2", trial.params.get("l2", 0.0))),
        lr=float(attrs.get("lr", trial.params.get("lr", float("nan")))),
        values=tuple(trial.values or ()),
        sparsity=attrs.get("sparsity"),
        baseline=bool(attrs.get("baseline", False)),
    )


def best_rows(study: optuna.Study) -> list[TrialRow]:
    """Single objective: the best trial, the best of each method class, and the λ = 0
    baseline. Two objectives: the Pareto front. Confirmation trials are left out."""
    complete = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "confirm" not in t.user_attrs
    ]
    if not complete:
        return []
    if len(study.directions) > 1:
        front = {t.number for t in study.best_trials}
        return [_row(t, "pareto") for t in complete if t.number in front]
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0

    def key(t: FrozenTrial) -> float:
        return sign * float(t.value if t.value is not None else float("inf"))

    rows = [_row(min(complete, key=key), "best")]
    classes: dict[str, FrozenTrial] = {}
    for t in sorted(complete, key=key):
        if not t.user_attrs.get("baseline"):
            classes.setdefault(_class_of(t), t)
    rows += [_row(t, c) for c, t in sorted(classes.items())]
    rows += [_row(t, "baseline (λ=0)") for t in complete if t.user_attrs.get("baseline")]
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
