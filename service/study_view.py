"""What the Optuna study behind a sweep says: trial counts, progress, best trial or Pareto
front, and pages of trials.

Counts come from one ``GROUP BY`` on Optuna's ``trials`` table (its schema is stable across
4.x and 5.x) so that reading a sweep does not load every trial; the rest goes through
Optuna's public API. A study that is missing (deleted behind the service's back) reads as
empty rather than failing the whole sweep.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, cast

import optuna
import sqlalchemy as sa
from optuna.trial import FrozenTrial, TrialState

from service.schemas import Progress, TrialOut, TrialStateName

# Lightweight handles onto Optuna's tables (no ORM import of optuna's private models).
_studies = sa.table("studies", sa.column("study_id"), sa.column("study_name"))
# Optuna declares the state as Enum(TrialState): a native enum type on PostgreSQL.
_state = sa.Enum(TrialState, name="trialstate")
_trials = sa.table(
    "trials", sa.column("trial_id"), sa.column("study_id"), sa.column("state", _state)
)
_attrs = sa.table(
    "trial_user_attributes", sa.column("trial_id"), sa.column("key"), sa.column("value_json")
)
STATES = tuple(s.name for s in TrialState)


def trial_counts(engine: sa.Engine, study_name: str | None = None) -> dict[str, int]:
    """Trials by Optuna state (every state present, 0 where none), of one study or all."""
    query = sa.select(_trials.c.state, sa.func.count()).group_by(_trials.c.state)
    if study_name is not None:
        query = query.join(_studies, _studies.c.study_id == _trials.c.study_id).where(
            _studies.c.study_name == study_name
        )
    counts = dict.fromkeys(STATES, 0)
    with engine.connect() as connection:
        for state, n in connection.execute(query):
            name = state.name if isinstance(state, TrialState) else str(state)
            counts[name] = int(n)
    return counts


def final_failures(engine: sa.Engine, study_name: str) -> int:
    """FAIL trials that the worker will not retry (user attribute ``final_failure``): they
    use budget, as COMPLETE and PRUNED ones do; a retried failure does not."""
    query = (
        sa.select(sa.func.count())
        .select_from(_trials)
        .join(_studies, _studies.c.study_id == _trials.c.study_id)
        .join(_attrs, _attrs.c.trial_id == _trials.c.trial_id)
        .where(
            _studies.c.study_name == study_name,
            _trials.c.state == TrialState.FAIL,
            _attrs.c.key == "final_failure",
            _attrs.c.value_json == "true",
        )
    )
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def progress(counts: dict[str, int], *, final_failures: int, n_trials: int) -> Progress:
    finished = counts["COMPLETE"] + counts["PRUNED"] + final_failures
    return Progress(
        finished=finished,
        running=counts["RUNNING"],
        n_trials=n_trials,
        fraction=min(1.0, finished / n_trials),
    )


def load(storage: optuna.storages.BaseStorage, study_name: str) -> optuna.Study | None:
    try:
        return optuna.load_study(
            study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler()
        )
    except KeyError:
        return None


def _finite(value: float | None) -> float | None:
    # JSON has no inf or nan; a diverged trial's inf loss reads as null.
    return value if value is not None and math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _utc(stamp: datetime | None) -> datetime | None:
    # FrozenTrial holds naive local time; astimezone() reads a naive stamp as local.
    return None if stamp is None else stamp.astimezone(UTC)


def trial_out(trial: FrozenTrial) -> TrialOut:
    start, end = _utc(trial.datetime_start), _utc(trial.datetime_complete)
    return TrialOut(
        number=trial.number,
        state=cast(TrialStateName, trial.state.name),
        params=_jsonable(trial.params),
        values=None if trial.values is None else [_finite(v) for v in trial.values],
        user_attrs=_jsonable(trial.user_attrs),
        started_at=start,
        completed_at=end,
        duration_s=None if start is None or end is None else (end - start).total_seconds(),
    )


def best_of(study: optuna.Study | None) -> tuple[TrialOut | None, list[TrialOut] | None]:
    """``(best, None)`` for one objective, ``(None, pareto front)`` for two."""
    if study is None:
        return None, None
    if len(study.directions) > 1:
        return None, [trial_out(t) for t in sorted(study.best_trials, key=lambda t: t.number)]
    try:
        return trial_out(study.best_trial), None
    except ValueError:  # no COMPLETE trial yet
        return None, None


def trial_page(
    study: optuna.Study | None, *, state: str | None, limit: int, offset: int
) -> tuple[list[TrialOut], int]:
    """One page of trials by number, and how many there are (of ``state``, if given)."""
    if study is None:
        return [], 0
    states = None if state is None else (TrialState[state],)
    trials = study.get_trials(deepcopy=False, states=states)
    return [trial_out(t) for t in trials[offset : offset + limit]], len(trials)
