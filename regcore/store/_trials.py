"""A study's trials counted in SQL: by state, and how many use the sweep's budget.

The rule for a sweep's budget lives here, once, for the workers (who claim under it) and the
service (which shows progress by it): a trial uses budget when it is running, complete,
pruned, or failed for a reason of its own (user attribute ``final_failure``). A trial that
was interrupted, or whose worker died, does not: the sweep still ends with exactly
``n_trials`` finished trials.

One ``GROUP BY`` over Optuna's ``trials`` table (its schema is stable across 4.x and 5.x)
instead of loading every trial: a claim reads the count on every trial it starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from optuna.trial import TrialState

# Lightweight handles onto Optuna's tables (no import of Optuna's private ORM models).
studies = sa.table("studies", sa.column("study_id"), sa.column("study_name"))
# Optuna declares the state as Enum(TrialState): a native enum type on PostgreSQL.
_state = sa.Enum(TrialState, name="trialstate")
trials = sa.table(
    "trials",
    sa.column("trial_id"),
    sa.column("study_id"),
    sa.column("state", _state),
    sa.column("datetime_start"),
)
trial_heartbeats = sa.table("trial_heartbeats", sa.column("trial_id"))
trial_user_attributes = sa.table(
    "trial_user_attributes", sa.column("trial_id"), sa.column("key"), sa.column("value_json")
)
STATES = tuple(s.name for s in TrialState)


@dataclass(frozen=True, kw_only=True)
class TrialCounts:
    """Trials by Optuna state (every state present) and the FAIL ones that are final."""

    by_state: Mapping[str, int]
    final_failures: int

    @property
    def running(self) -> int:
        return self.by_state["RUNNING"]

    @property
    def finished(self) -> int:
        """Trials that are over and count towards ``n_trials``."""
        return self.by_state["COMPLETE"] + self.by_state["PRUNED"] + self.final_failures

    @property
    def used(self) -> int:
        """Budget taken: finished trials plus those running now."""
        return self.finished + self.running


def _query(study_names: Sequence[str] | None, *, per_study: bool) -> sa.Select[Any]:
    final = trial_user_attributes.alias("final")
    columns = [trials.c.state, sa.func.count(), sa.func.count(final.c.trial_id)]
    query = (
        sa.select(*columns, *([studies.c.study_name] if per_study else []))
        .select_from(trials)
        .outerjoin(
            final,
            sa.and_(
                final.c.trial_id == trials.c.trial_id,
                final.c.key == "final_failure",
                final.c.value_json == "true",
            ),
        )
        .group_by(trials.c.state, *([studies.c.study_name] if per_study else []))
    )
    if per_study or study_names is not None:
        query = query.join(studies, studies.c.study_id == trials.c.study_id)
    if study_names is not None:
        query = query.where(studies.c.study_name.in_(list(study_names)))
    return query


def _counts(rows: Iterable[tuple[Any, int, int]]) -> TrialCounts:
    by_state, final_failures = dict.fromkeys(STATES, 0), 0
    for state, n, n_final in rows:
        name = state.name if isinstance(state, TrialState) else str(state)
        by_state[name] = int(n)
        if name == TrialState.FAIL.name:
            final_failures = int(n_final)
    return TrialCounts(by_state=MappingProxyType(by_state), final_failures=final_failures)


def count_trials(engine: sa.Engine, study_name: str | None = None) -> TrialCounts:
    """The trials of study ``study_name`` (of every study when None), in one query."""
    query = _query(None if study_name is None else [study_name], per_study=False)
    with engine.connect() as connection:
        rows = [(state, n, n_final) for state, n, n_final in connection.execute(query)]
    return _counts(rows)


def count_trials_by_study(engine: sa.Engine, study_names: Sequence[str]) -> dict[str, TrialCounts]:
    """The trials of each of ``study_names`` (a page of sweeps, say), in one query; a study
    without trials, or missing, counts zero everywhere."""
    rows: dict[str, list[tuple[Any, int, int]]] = {name: [] for name in study_names}
    if study_names:
        with engine.connect() as connection:
            for state, n, n_final, name in connection.execute(_query(study_names, per_study=True)):
                rows[name].append((state, n, n_final))
    return {name: _counts(found) for name, found in rows.items()}


def orphaned_trials(engine: sa.Engine, study_name: str, *, older_than_s: float) -> list[int]:
    """Ids of the study's RUNNING trials that started over ``older_than_s`` ago and never
    had a heartbeat: their worker lost them between asking for them and its first beat (an
    outage cutting a claim short). Optuna fails only trials whose heartbeat went stale, so
    these would hold their budget forever."""
    # Optuna 5 stores naive UTC times.
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=older_than_s)
    beat = sa.select(trial_heartbeats.c.trial_id).where(
        trial_heartbeats.c.trial_id == trials.c.trial_id
    )
    query = (
        sa.select(trials.c.trial_id)
        .join(studies, studies.c.study_id == trials.c.study_id)
        .where(
            studies.c.study_name == study_name,
            trials.c.state == TrialState.RUNNING,
            trials.c.datetime_start < cutoff,
            ~beat.exists(),
        )
    )
    with engine.connect() as connection:
        return [int(i) for i in connection.execute(query).scalars()]
