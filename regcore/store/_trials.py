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

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import sqlalchemy as sa
from optuna.trial import TrialState

# Lightweight handles onto Optuna's tables (no import of Optuna's private ORM models).
studies = sa.table("studies", sa.column("study_id"), sa.column("study_name"))
# Optuna declares the state as Enum(TrialState): a native enum type on PostgreSQL.
_state = sa.Enum(TrialState, name="trialstate")
trials = sa.table(
    "trials", sa.column("trial_id"), sa.column("study_id"), sa.column("state", _state)
)
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


def count_trials(engine: sa.Engine, study_name: str | None = None) -> TrialCounts:
    """The trials of study ``study_name`` (of every study when None), in one query."""
    final = trial_user_attributes.alias("final")
    query = (
        sa.select(trials.c.state, sa.func.count(), sa.func.count(final.c.trial_id))
        .select_from(trials)
        .outerjoin(
            final,
            sa.and_(
                final.c.trial_id == trials.c.trial_id,
                final.c.key == "final_failure",
                final.c.value_json == "true",
            ),
        )
        .group_by(trials.c.state)
    )
    if study_name is not None:
        query = query.join(studies, studies.c.study_id == trials.c.study_id).where(
            studies.c.study_name == study_name
        )
    by_state, final_failures = dict.fromkeys(STATES, 0), 0
    with engine.connect() as connection:
        for state, n, n_final in connection.execute(query):
            name = state.name if isinstance(state, TrialState) else str(state)
            by_state[name] = int(n)
            if name == TrialState.FAIL.name:
                final_failures = int(n_final)
    return TrialCounts(by_state=MappingProxyType(by_state), final_failures=final_failures)
