"""Exact budgets: how many of a sweep's ``n_trials`` are used, and claiming the next one.

A trial uses budget when it is running, complete, pruned, or failed for a reason of its
own (``final_failure``); a trial that was interrupted or whose worker died does not, so the
sweep still ends with exactly ``n_trials`` finished trials. Counting and asking happen under
one lock, so no two workers can take the last slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from regcore.store import StudyLock

_USED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


@dataclass(frozen=True, kw_only=True)
class Budget:
    used: int
    running: int
    finished: int
    total: int

    @property
    def exhausted(self) -> bool:
        return self.used >= self.total


def uses_budget(trial: FrozenTrial) -> bool:
    if trial.state in _USED_STATES:
        return True
    return trial.state == TrialState.FAIL and bool(trial.user_attrs.get("final_failure"))


def budget(study: optuna.Study, n_trials: int) -> Budget:
    trials = study.get_trials(deepcopy=False)
    used = [t for t in trials if uses_budget(t)]
    running = sum(t.state == TrialState.RUNNING for t in used)
    return Budget(used=len(used), running=running, finished=len(used) - running, total=n_trials)


def claim(study: optuna.Study, n_trials: int, lock: StudyLock) -> optuna.Trial | None:
    """The next trial of ``study`` if the budget has room, else None."""
    with lock.hold():
        if budget(study, n_trials).exhausted:
            return None
        return study.ask()
