"""What the Optuna study behind a sweep says: progress, best trial or Pareto front, and pages
of trials.

Counts come from :func:`regcore.store.count_trials` (one SQL query). The best trial only
changes when a trial completes, so it is kept per (sweep, number of COMPLETE trials): a
read of a sweep whose count did not move costs two small queries and no Optuna load, and is
never stale. A study that is missing (deleted behind the service's back) reads as empty
rather than failing the whole sweep.

A sweep deleted while it is read (after its row was read, before or while its study is) is a
404, as if the delete had come first: :func:`load_for` and :func:`reading` say so where
Optuna would raise ``KeyError('Record does not exist.')``.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

import optuna
import sqlalchemy as sa
from optuna.trial import FrozenTrial, TrialState

from regcore.confirm import confirmation
from regcore.service.errors import ApiError
from regcore.service.schemas import DecisionOut, FailureCount, Progress, TrialOut, TrialStateName
from regcore.store import SweepNotFoundError, SweepRow, TrialCounts, get_sweep
from regcore.sweeps.results import best_trial, failure_reasons

Best = tuple[TrialOut | None, list[TrialOut] | None]
T = TypeVar("T")


def progress(counts: TrialCounts, *, n_trials: int) -> Progress:
    return Progress(
        finished=counts.finished,
        running=counts.running,
        n_trials=n_trials,
        fraction=min(1.0, counts.finished / n_trials),
    )


def load(storage: optuna.storages.BaseStorage, study_name: str) -> optuna.Study | None:
    try:
        return optuna.load_study(
            study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler()
        )
    except KeyError:
        return None


def deleted(sweep_id: str) -> ApiError:
    return ApiError(
        404,
        f"sweep {sweep_id!r} was deleted while it was read; GET /v1/sweeps lists the sweeps",
        field="sweep_id",
    )


def load_for(
    storage: optuna.storages.BaseStorage, engine: sa.Engine, sweep: SweepRow
) -> optuna.Study | None:
    """The sweep's study; 404 when the sweep was deleted since its row was read, None when
    only its study is missing."""
    study = load(storage, sweep.study_name)
    if study is None:
        try:
            get_sweep(engine, sweep.id)
        except SweepNotFoundError:
            raise deleted(sweep.id) from None
    return study


def exists(storage: optuna.storages.BaseStorage, study_name: str) -> bool:
    try:
        storage.get_study_id_from_name(study_name)
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def reading(storage: optuna.storages.BaseStorage, sweep: SweepRow) -> Iterator[None]:
    """Reads of ``sweep``'s study inside: 404 when it is deleted meanwhile (Optuna's
    ``KeyError``); any other KeyError, with the study still there, is a bug and goes on."""
    try:
        yield
    except KeyError:
        if exists(storage, sweep.study_name):
            raise
        raise deleted(sweep.id) from None


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
    """``(best, None)`` for one objective (trained from scratch: a path's warm-started
    points are steps, not results), ``(None, pareto front)`` for two."""
    if study is None:
        return None, None
    if len(study.directions) > 1:
        return None, [trial_out(t) for t in sorted(study.best_trials, key=lambda t: t.number)]
    found = best_trial(study)
    return (None if found is None else trial_out(found)), None


def decision_of(study: optuna.Study | None) -> DecisionOut | None:
    """What the sweep's confirmation decided, None without one."""
    found = None if study is None or len(study.directions) > 1 else confirmation(study)
    return None if found is None else DecisionOut.model_validate(_jsonable(found.summary()))


def trial_page(
    study: optuna.Study | None, *, state: str | None, limit: int, offset: int
) -> tuple[list[TrialOut], int]:
    """One page of trials by number, and how many there are (of ``state``, if given)."""
    if study is None:
        return [], 0
    states = None if state is None else (TrialState[state],)
    trials = study.get_trials(deepcopy=False, states=states)
    return [trial_out(t) for t in trials[offset : offset + limit]], len(trials)


def failures_of(study: optuna.Study | None) -> list[FailureCount]:
    """Why its trials failed, most common reason first."""
    if study is None:
        return []
    return [FailureCount(reason=r, trials=n) for r, n in failure_reasons(study)]


class CountCache(Generic[T]):
    """``of(study)`` per (sweep id, number of trials in a final state): such a trial never
    changes, and a sweep id is never reused, so an entry is right for as long as its key
    matches (COMPLETE trials for ``best_of``, FAIL ones for ``failures_of``)."""

    def __init__(self, of: Callable[[optuna.Study | None], T], *, size: int = 1024) -> None:
        self.of = of
        self.size = size
        self._entries: OrderedDict[tuple[str, int], T] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, storage: optuna.storages.BaseStorage, *, sweep_id: str, study_name: str, count: int
    ) -> T:
        key = (sweep_id, count)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = self.of(load(storage, study_name))
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value


class BestCache(CountCache[Best]):
    """The best trial (or Pareto front) per (sweep, COMPLETE trials)."""

    def __init__(self, *, size: int = 1024) -> None:
        super().__init__(best_of, size=size)


class DecisionCache(CountCache[DecisionOut | None]):
    """The confirmation's decision per (sweep, confirmation trials COMPLETE and FAIL)."""

    def __init__(self, *, size: int = 1024) -> None:
        super().__init__(decision_of, size=size)

    @staticmethod
    def key(counts: TrialCounts) -> int:
        done = counts.confirm_by_state
        return done["COMPLETE"] * 1_000_003 + done["FAIL"]


class FailureCache(CountCache[list[FailureCount]]):
    """Why trials failed, per (sweep, FAIL trials)."""

    def __init__(self, *, size: int = 1024) -> None:
        super().__init__(failures_of, size=size)
