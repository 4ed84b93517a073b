"""What a finished (or running) sweep found, as plain rows for tables and reports.

Reads only the study: the values a trial trained with are its user attributes (``method``,
``l1``, ``l2``, ``lr``), so fixed and unsampled dimensions show too.
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
    l1: float
    l2: float
    lr: float
    values: tuple[float, ...]
    sparsity: float | None
    baseline: bool

    def regularizer_line(self) -> str:
        """What to paste into a training script to use this trial's setting."""
        return f'Regularizer(model, l1={self.l1:g}, l2={self.l2:g}, method="{self.method}")'


def _row(trial: FrozenTrial, label: str) -> TrialRow:
    attrs: dict[str, Any] = trial.user_attrs
    return TrialRow(
        number=trial.number,
        label=label,
        method=str(attrs.get("method", trial.params.get("method", "?"))),
        l1=float(attrs.get("l1", trial.params.get("l1", 0.0))),
        l2=float(attrs.get("l2", trial.params.get("l2", 0.0))),
        lr=float(attrs.get("lr", trial.params.get("lr", float("nan")))),
        values=tuple(trial.values or ()),
        sparsity=attrs.get("sparsity"),
        baseline=bool(attrs.get("baseline", False)),
    )


def best_rows(study: optuna.Study) -> list[TrialRow]:
    """Single objective: the best trial, the best of each method, and the λ = 0 baseline.
    Two objectives: the Pareto front."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    if len(study.directions) > 1:
        return [_row(t, "pareto") for t in study.best_trials]
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0

    def key(t: FrozenTrial) -> float:
        return sign * float(t.value if t.value is not None else float("inf"))

    rows = [_row(min(complete, key=key), "best")]
    methods: dict[str, FrozenTrial] = {}
    for t in sorted(complete, key=key):
        methods.setdefault(str(t.user_attrs.get("method", "?")), t)
    rows += [_row(t, m) for m, t in sorted(methods.items())]
    rows += [_row(t, "baseline (λ=0)") for t in complete if t.user_attrs.get("baseline")]
    return rows
