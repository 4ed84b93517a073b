"""A study's trials counted in SQL: by state, and how many use the sweep's budget.

The rule for a sweep's budget lives here, once, for the workers (who claim under it) and the
service (which shows progress by it): a trial uses budget when it is running, complete,
pruned, or failed for a reason of its own (user attribute ``final_failure``). A trial that
was interrupted, or whose worker died, does not: the sweep still ends with exactly
``n_trials`` finished trials. Nor does a confirmation trial, which runs after the search in
the sweep's confirmation study (:func:`confirmation_study_name`; :mod:`regcore.confirm`).

One ``GROUP BY`` over Optuna's ``trials`` table (its schema is stable across 4.x and 5.x)
instead of loading every trial: a claim reads the count on every trial it starts. Recovery
reads Optuna's tables here too: trials lost before their first heartbeat, studies left
without their sweep.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from optuna.trial import TrialState

from regcore.store._tables import sweeps
from regcore.trial_kinds import CONFIRM, FINAL_FAILURE

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
study_user_attributes = sa.table(
    "study_user_attributes", sa.column("study_id"), sa.column("key"), sa.column("value_json")
)
STATES = tuple(s.name for s in TrialState)


@dataclass(frozen=True, kw_only=True)
class TrialCounts:
    """The search's trials by Optuna state (every state present), its FAIL ones that are
    final, and the confirmation's trials by state (they run after the search, in a study of
    their own, and use no budget)."""

    by_state: Mapping[str, int]
    final_failures: int
    confirm_by_state: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType(dict.fromkeys(STATES, 0))
    )

    @property
    def running(self) -> int:
        """The search's trials running now."""
        return self.by_state["RUNNING"]

    @property
    def finished(self) -> int:
        """The search's trials that are over and count towards ``n_trials``."""
        return self.by_state["COMPLETE"] + self.by_state["PRUNED"] + self.final_failures

    @property
    def used(self) -> int:
        """Budget taken: finished trials plus those running now."""
        return self.finished + self.running

    @property
    def confirming(self) -> int:
        """Confirmation trials waiting or running."""
        return self.confirm_by_state["WAITING"] + self.confirm_by_state["RUNNING"]


#: The confirmation's trials live in a sibling study, so that the sweep's own study holds the
#: search alone: Optuna's best trial of it (what optuna-dashboard shows) is the search's best.
CONFIRM_STUDY_SUFFIX = ":confirm"  # a spec's name cannot hold ":", so no sweep's study ends so


def confirmation_study_name(study_name: str) -> str:
    """The name of the study that holds the confirmation trials of study ``study_name``."""
    return study_name + CONFIRM_STUDY_SUFFIX


def _search_study_name(name: str) -> str:
    return name.removesuffix(CONFIRM_STUDY_SUFFIX)


def _query(study_names: Sequence[str] | None) -> sa.Select[Any]:
    final = trial_user_attributes.alias("final")
    confirm = trial_user_attributes.alias("confirm")  # a confirmation kept in the search's study
    is_confirm = sa.case(
        (studies.c.study_name.like("%" + CONFIRM_STUDY_SUFFIX), 1),
        (confirm.c.trial_id.is_not(None), 1),
        else_=0,
    ).label("is_confirm")
    columns = [trials.c.state, is_confirm, sa.func.count(), sa.func.count(final.c.trial_id)]
    query = (
        sa.select(*columns, studies.c.study_name)
        .select_from(trials)
        .join(studies, studies.c.study_id == trials.c.study_id)
        .outerjoin(
            final,
            sa.and_(
                final.c.trial_id == trials.c.trial_id,
                final.c.key == FINAL_FAILURE,
                final.c.value_json == "true",
            ),
        )
        .outerjoin(
            confirm, sa.and_(confirm.c.trial_id == trials.c.trial_id, confirm.c.key == CONFIRM)
        )
        .group_by(trials.c.state, is_confirm, studies.c.study_name)
    )
    if study_names is not None:
        names = [n for s in study_names for n in (s, confirmation_study_name(s))]
        query = query.where(studies.c.study_name.in_(names))
    return query


_Row = tuple[Any, int, int, int]  # state, is a confirmation, trials, final failures


def _counts(rows: Iterable[_Row]) -> TrialCounts:
    by_state, confirm, final_failures = dict.fromkeys(STATES, 0), dict.fromkeys(STATES, 0), 0
    for state, is_confirm, n, n_final in rows:
        name = state.name if isinstance(state, TrialState) else str(state)
        if is_confirm:
            confirm[name] += int(n)
            continue
        by_state[name] += int(n)
        if name == TrialState.FAIL.name:
            final_failures += int(n_final)
    return TrialCounts(
        by_state=MappingProxyType(by_state),
        final_failures=final_failures,
        confirm_by_state=MappingProxyType(confirm),
    )


def count_trials(engine: sa.Engine | sa.Connection, study_name: str | None = None) -> TrialCounts:
    """The trials of study ``study_name`` and of its confirmation (of every study when None),
    in one query; on a ``Connection``, in its transaction (a claim's, under the study's lock)."""
    query = _query(None if study_name is None else [study_name])
    if isinstance(engine, sa.Connection):
        return _counts(tuple(row)[:4] for row in engine.execute(query))
    with engine.connect() as connection:
        rows = [tuple(row)[:4] for row in connection.execute(query)]
    return _counts(rows)


def count_trials_by_study(engine: sa.Engine, study_names: Sequence[str]) -> dict[str, TrialCounts]:
    """The trials of each of ``study_names`` (a page of sweeps, say) with their confirmations,
    in one query; a study without trials, or missing, counts zero everywhere."""
    rows: dict[str, list[_Row]] = {name: [] for name in study_names}
    if study_names:
        with engine.connect() as connection:
            for state, is_confirm, n, n_final, name in connection.execute(_query(study_names)):
                rows[_search_study_name(name)].append((state, is_confirm, n, n_final))
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


def studies_without_sweep(engine: sa.Engine, *, marked: str) -> list[tuple[str, Any]]:
    """The studies that carry the user attribute ``marked`` but have no sweep row: (study
    name, the attribute's value) each. A submission killed before its row was inserted
    leaves such a study (:func:`regcore.sweeps.half_made.remove_half_made`)."""
    row = sa.select(sweeps.c.id).where(sweeps.c.study_name == studies.c.study_name)
    query = (
        sa.select(studies.c.study_name, study_user_attributes.c.value_json)
        .join(study_user_attributes, study_user_attributes.c.study_id == studies.c.study_id)
        .where(study_user_attributes.c.key == marked, ~row.exists())
        .order_by(studies.c.study_name)
    )
    with engine.connect() as connection:
        return [(str(name), json.loads(value)) for name, value in connection.execute(query)]
