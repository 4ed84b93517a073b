"""Exact budgets: how many of a sweep's ``n_trials`` are used, and claiming the next one.

Which trials use budget is decided in :mod:`regcore.store` (``count_trials``), counted in
SQL. Counting and asking happen under one lock, so no two workers can take the last slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from regcore.store import StudyLock, count_trials


@dataclass(frozen=True, kw_only=True)
class Budget:
    used: int
    running: int
    finished: int
    total: int

    @property
    def exhausted(self) -> bool:
        return self.used >= self.total


def budget(storage: optuna.storages.RDBStorage, study_name: str, n_trials: int) -> Budget:
    counts = count_trials(storage.engine, study_name)
    return Budget(
        used=counts.used, running=counts.running, finished=counts.finished, total=n_trials
    )


def claim(
    study: optuna.Study, n_trials: int, lock: StudyLock, *, storage: optuna.storages.RDBStorage
) -> optuna.Trial | None:
    """The next trial of ``study`` (kept in ``storage``) if the budget has room, else None."""
    with lock.hold():
        if budget(storage, study.study_name, n_trials).exhausted:
            return None
        return study.ask()
