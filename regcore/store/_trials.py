"""A study's trials counted in SQL: by state, and how many use the sweep's budget.

The rule for a sweep's budget lives here, once, for the workers (who claim under it) and the
service (which shows progress by it): a trial uses budget when it is running, complete,
pruned, or failed for a reason of its own (user attribute ``final_failure``). A trial that
was interrupted, or whose worker died, does not: the sweep still ends with exactly
``n_trials`` finished trials. Nor does a confirmation trial (user attribute ``confirm``),
which runs after the search (:mod:`regcore.confirm`).

One ``GROUP BY`` over Optuna's ``trials`` table (its schema is stable across 4.x and 5.x)
instead of loading every trial: a claim reads the count on every trial it starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
    """Trials by Optuna state (every state present, every trial), the search's FAIL ones
    that are final, and the confirmation trials by state (user attribute ``confirm``: they
    run after the search and use no budget)."""

    by_state: Mapping[str, int]
    final_failures: int
    confirm_by_state: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType(dict.fromkeys(STATES, 0))
    )

    @property
    def running(self) -> int:
        """The search's trials running now."""
        return self.by_state["RUNNING"] - self.confirm_by_state["RUNNING"]

    @property
    def finished(self) -> int:
        """The search's trials that are over and count towards ``n_trials``."""
        ended = self.by_state["COMPLETE"] + self.by_state["PRUNED"]
        return (
            ended
            - self.confirm_by_state["COMPLETE"]
            - self.confirm_by_state["PRUNED"]
            + (self.final_failures)
        )

    @property
    def used(self) -> int:
        """Budget taken: finished trials plus those running now."""
        return self.finished + self.running

    @property
    def confirming(self) -> int:
        """Confirmation trials waiting or running."""
        return self.confirm_by_state["WAITING"] + self.confirm_by_state["RUNNING"]


def _query(study_names: Sequence[str] | None, *, per_study: bool) -> sa.Select[Any]:
    final = trial_user_attributes.alias("final")
    confirm = trial_user_attributes.alias("confirm")
    is_confirm = sa.case((confirm.c.trial_id.is_(None), 0), else_=1).label("is_confirm")
    columns = [trials.c.state, is_confirm, sa.func.count(), sa.func.count(final.c.trial_id)]
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
        .outerjoin(
            confirm, sa.and_(confirm.c.trial_id == trials.c.trial_id, confirm.c.key == "confirm")
        )
        .group_by(trials.c.state, is_confirm, *([studies.c.study_name] if per_study else []))
    )
    if per_study or study_names is not None:
        query = query.join(studies, studies.c.study_id == trials.c.study_id)
    if study_names is not None:
        query = query.where(studies.c.study_name.in_(list(study_names)))
    return query


_Row = tuple[Any, int, int, int]  # state, is a confirmation, trials, final failures


def _counts(rows: Iterable[_Row]) -> TrialCounts:
    by_state, confirm, final_failures = dict.fromkeys(STATES, 0), dict.fromkeys(STATES, 0), 0
    for state, is_confirm, n, n_final in rows:
        name = state.name if isinstance(state, TrialState) else str(state)
        by_state[name] += int(n)
        if is_confirm:
            confirm[name] += int(n)
        elif name == TrialState.FAIL.name:
            final_failures += int(n_final)
    return TrialCounts(
        by_state=MappingProxyType(by_state),
        final_failures=final_failures,
        confirm_by_state=MappingProxyType(confirm),
    )


def count_trials(engine: sa.Engine, study_name: str | None = None) -> TrialCounts:
    """The trials of study ``study_name`` (of every study when None), in one query."""
    query = _query(None if study_name is None else [study_name], per_study=False)
    with engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(query)]
    return _counts(rows)


def count_trials_by_study(engine: sa.Engine, study_names: Sequence[str]) -> dict[str, TrialCounts]:
    """The trials of each of ``study_names`` (a page of sweeps, say), in one query; a study
    without trials, or missing, counts zero everywhere."""
    rows: dict[str, list[_Row]] = {name: [] for name in study_names}
    if study_names:
        with engine.connect() as connection:
            query = _query(study_names, per_study=True)
            for state, is_confirm, n, n_final, name in connection.execute(query):
                rows[name].append((state, is_confirm, n, n_final))
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
