"""What a report says about a sweep before any figure: its names, objectives and trial counts,
and which of its trials are the search's (a confirmation's trials are shown apart).

A spec may come as a :class:`SweepSpec` or as the plain dict stored with the sweep. The dict
is read as it is, without validation: a report must open for any sweep in the database,
including ones whose spec a later version of regsweep would refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import optuna
from optuna.trial import FrozenTrial, TrialState

from regcore.confirm import confirmation_trials
from regcore.spec import SweepSpec
from regcore.trial_kinds import rules_of

SpecLike: TypeAlias = Mapping[str, Any] | SweepSpec
Target: TypeAlias = Callable[[FrozenTrial], float] | None

# The order trial counts are shown in.
_STATES = (
    TrialState.COMPLETE,
    TrialState.PRUNED,
    TrialState.FAIL,
    TrialState.RUNNING,
    TrialState.WAITING,
)


@dataclass(frozen=True, kw_only=True)
class SweepFacts:
    name: str
    workload: str
    status: str | None
    sweep_id: str | None
    study_name: str
    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    counts: dict[str, int]  # the search's trials by state
    confirm_counts: dict[str, int] = field(default_factory=dict)  # a confirmation's
    spec: Mapping[str, Any] = field(default_factory=dict)

    @property
    def multi(self) -> bool:
        return len(self.metrics) > 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def objective(self, index: int = 0) -> str:
        """``val_loss (minimize)``."""
        return f"{self.metrics[index]} ({self.directions[index]})"

    def objectives(self) -> str:
        """Every objective: ``val_loss (minimize), sparsity (maximize)``."""
        return ", ".join(self.objective(i) for i in range(len(self.metrics)))

    def target(self, index: int = 0) -> tuple[Target, str]:
        """What Optuna's plots take as ``target`` and ``target_name`` for objective ``index``.

        Single-objective plots take ``None`` (the value); multi-objective ones need a target.
        """
        if not self.multi:
            return None, self.metrics[0]
        return (lambda t: float(t.values[index])), self.metrics[index]

    def counts_text(self) -> str:
        parts = [f"{n} {state}" for state, n in self.counts.items() if n or state == "complete"]
        return f"{self.total} in all: " + ", ".join(parts)

    def confirm_text(self) -> str | None:
        """The confirmation's trials by state, when it has any."""
        parts = [f"{n} {state}" for state, n in self.confirm_counts.items() if n]
        total = sum(self.confirm_counts.values())
        return f"{total} in all: " + ", ".join(parts) if total else None

    def section(self, name: str) -> Mapping[str, Any]:
        """One section of the stored spec (``optimizer``, ``confirm``), {} when it has none."""
        value = self.spec.get(name)
        return value if isinstance(value, Mapping) else {}

    @property
    def methods(self) -> tuple[str, ...]:
        """The methods the spec lists (a single name as one)."""
        space = self.section("search_space")
        listed = space.get("method", space.get("methods", ()))
        return (listed,) if isinstance(listed, str) else tuple(str(m) for m in listed or ())


def spec_dict(spec: SpecLike) -> dict[str, Any]:
    return spec.to_json_dict() if isinstance(spec, SweepSpec) else dict(spec)


def _workload(spec: Mapping[str, Any], study: optuna.Study) -> str:
    workload = spec.get("workload")
    if isinstance(workload, Mapping):
        workload = workload.get("name")
    if workload is None:
        workload = study.user_attrs.get("workload", "?")
    return str(workload)


def _objectives(spec: Mapping[str, Any], study: optuna.Study) -> tuple[list[str], list[str]]:
    """Metric names and directions; the study's own directions when the spec disagrees."""
    directions = [d.name.lower() for d in study.directions]
    objectives = spec.get("objectives")
    metrics: list[str] = []
    if isinstance(objectives, list) and len(objectives) == len(directions):
        metrics = [str(o.get("metric", "")) if isinstance(o, Mapping) else "" for o in objectives]
    if len(directions) == 1 and not objectives:
        metrics = ["val_loss"]  # the spec's default objective
    if len(metrics) != len(directions) or not all(metrics):
        metrics = [f"objective {i}" for i in range(len(directions))]
    return metrics, directions


def describe(
    study: optuna.Study, spec: SpecLike, *, sweep_id: str | None, status: str | None
) -> SweepFacts:
    data = spec_dict(spec)
    metrics, directions = _objectives(data, study)
    counts = {state.name.lower(): 0 for state in _STATES}
    confirm_counts = dict.fromkeys(counts, 0)
    for trial in search_trials(study):
        key = trial.state.name.lower()
        counts[key] = counts.get(key, 0) + 1
    for trial in confirmation_trials(study):
        key = trial.state.name.lower()
        confirm_counts[key] = confirm_counts.get(key, 0) + 1
    return SweepFacts(
        name=str(data.get("name") or study.study_name),
        workload=_workload(data, study),
        status=status,
        sweep_id=sweep_id,
        study_name=study.study_name,
        metrics=tuple(metrics),
        directions=tuple(directions),
        counts=counts,
        confirm_counts=confirm_counts,
        spec=data,
    )


def search_trials(
    study: optuna.Study, states: tuple[TrialState, ...] | None = None
) -> list[FrozenTrial]:
    """The search's trials (a confirmation's left out: they repeat settings it found)."""
    trials = study.get_trials(deepcopy=False, states=states)
    return [t for t in trials if rules_of(t).in_search_study]


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The search's COMPLETE trials, the λ = 0 baseline among them."""
    return search_trials(study, (TrialState.COMPLETE,))


def is_baseline(trial: FrozenTrial) -> bool:
    return rules_of(trial).baseline


def class_of(trial: FrozenTrial) -> str:
    """A trial's method class; a trial from before classes existed, its method."""
    attrs, params = trial.user_attrs, trial.params
    for key in ("method_class", "method"):
        for source in (attrs, params):
            if key in source:
                return str(source[key])
    return "?"


def sub_study(study: optuna.Study, trials: Iterable[FrozenTrial]) -> optuna.Study:
    """An in-memory study of ``trials`` alone, for Optuna's plots (which read a whole study).
    Trial numbers restart at 0; confirmations come after the search, so its keep theirs."""
    sub = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        study_name=study.study_name,
        directions=study.directions,
    )
    sub.add_trials(list(trials))
    return sub


def search_study(study: optuna.Study) -> optuna.Study:
    """``study`` without its confirmation trials (itself when it has none)."""
    trials = study.get_trials(deepcopy=False)
    if all(rules_of(t).in_search_study for t in trials):
        return study
    return sub_study(study, (t for t in trials if rules_of(t).in_search_study))
