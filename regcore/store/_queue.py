"""The queue: which sweep a worker works on next, and how a sweep ends.

:func:`claim_next_sweep` reads the next runnable sweep and, if it is queued, starts it with
one conditional ``UPDATE ... WHERE status = 'queued' ... RETURNING``: of claimers racing for
it, one starts it and the others (whose update matched no row once the first committed)
read it again, running, with the first one's ``started_at``. A queued sweep turns
``running`` exactly once. A running sweep is shared by every worker, so its row is read, not
locked: a lock (``FOR UPDATE SKIP LOCKED``, as a job queue takes a job) would make the
workers that find it locked by another's claim skip the sweep and wait for nothing (20
claimers on one running sweep found nothing in 87 % of their claims). SQLite: ``BEGIN
IMMEDIATE`` takes the database's write lock before the read, so claims run one after the
other (each takes well under a millisecond).

That no more than ``n_trials`` trials of a sweep start is :func:`claim_trials`' job, under
the study's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from regcore.store._engine import read, write
from regcore.store._locks import StudyLock
from regcore.store._optuna import open_trial, reserve_trials, set_user_attrs
from regcore.store._outbox import lock_batches, record_ends
from regcore.store._rows import SweepNotFoundError, SweepRow, WorkerNotFoundError
from regcore.store._tables import FINAL_STATUSES, RUNNABLE_STATUSES, sweeps, utcnow, workers
from regcore.store._trials import TrialCounts, count_trials
from regcore.trial_kinds import FAIL_REASON, FINAL_FAILURE


def _runnable(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        sweeps.c.status.in_(RUNNABLE_STATUSES),
        sweeps.c.cancel_requested == sa.false(),
        sa.or_(sweeps.c.deadline.is_(None), sweeps.c.deadline > now),
    )


def claim_next_sweep(
    engine: sa.Engine,
    *,
    worker_id: str,
    exclude: Collection[str] = (),
    only: str | None = None,
    accept: Callable[[SweepRow], bool] | None = None,
) -> SweepRow | None:
    """The highest-priority runnable sweep (oldest first within a priority), or None.

    Runnable: queued or running, not cancelled, deadline not passed, not one of the
    ``exclude`` ids (a worker's sweeps whose budget is taken while others run their last
    trials) and, with ``only``, that sweep (``regsweep run``'s workers work on theirs alone).
    A sweep that ``accept`` refuses (one whose workload the worker cannot build) is passed
    over, untouched, for the next. A queued sweep is marked running (by one claimer: see
    the module's docstring); the worker's row records the sweep, in the same transaction,
    and the sweep's note of what it waited for is cleared.
    """
    now = utcnow()
    passed: list[str] = list(exclude)
    conditions = [_runnable(now)]
    if only is not None:
        conditions.append(sweeps.c.id == only)
    with write(engine) as connection:
        worker = connection.execute(sa.select(workers.c.id).where(workers.c.id == worker_id))
        if worker.first() is None:
            raise WorkerNotFoundError(
                f"worker {worker_id!r} is not registered (or was removed as stale); "
                "register it with register_worker() before claiming"
            )
        while True:
            pick = (
                sa.select(sweeps)
                .where(*conditions, sweeps.c.id.not_in(passed))
                .order_by(sweeps.c.priority.desc(), sweeps.c.created_at, sweeps.c.id)
                .limit(1)
            )
            row = connection.execute(pick).mappings().first()
            if row is None:
                return None
            sweep = SweepRow.from_mapping(row)
            if accept is not None and not accept(sweep):
                passed.append(sweep.id)
                continue
            changes: dict[str, Any] = {"note": None} if sweep.note is not None else {}
            if sweep.status == "queued":
                changes |= {"status": "running", "started_at": now}
            if not changes:
                break
            # Only as it was read: another claimer may have started it meanwhile (then this
            # matches no row, and the sweep is read again), or a user cancelled it.
            changed = connection.execute(
                sa.update(sweeps)
                .where(*conditions, sweeps.c.id == sweep.id, sweeps.c.status == sweep.status)
                .values(changes)
                .returning(*sweeps.c)
            )
            if (updated := changed.mappings().first()) is not None:
                sweep = SweepRow.from_mapping(updated)
                break
        connection.execute(
            sa.update(workers)
            .where(workers.c.id == worker_id)
            .values(current_sweep_id=sweep.id, status="busy", last_heartbeat=now)
        )
        return sweep


@dataclass(frozen=True, kw_only=True)
class FixedPoint:
    """One trial to claim with exactly these parameters (and their distributions) and user
    attributes, outside the sampler and the queue: a path's next point. ``reserve``: claim
    it only if that many trials of budget are left after it (for what must come later)."""

    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    user_attrs: dict[str, Any]
    reserve: int = 0


def claim_trials(
    engine: sa.Engine,
    study: optuna.Study,
    *,
    n_trials: int,
    lock: StudyLock,
    k: int = 1,
    fixed: FixedPoint | None = None,
    after_search: Callable[[], optuna.Trial | None] | None = None,
    open_in_order: bool = False,
) -> list[optuna.Trial]:
    """Up to ``k`` next trials of a claimed sweep's ``study``: as many as its budget has room
    for (none when it is taken); with ``fixed``, that one point.

    The study's ``lock`` is held for one short transaction that counts the budget
    (:func:`count_trials`: running and finished trials use it) and reserves the trials it
    has room for, as running ones (:func:`reserve_trials`), so however many workers claim
    at once, no more than ``n_trials`` ever use budget. The sampler runs after the lock is
    released (:func:`open_trial`), so claims wait on each other for milliseconds, not for
    sampling. Once the search is over (budget taken, none of its trials running), search
    trials still waiting (a retry queued while others took the budget) are failed as
    superseded rather than left waiting for ever, and ``after_search()`` may give one trial
    that uses no budget (a confirmation's, from its own study: :mod:`regcore.confirm`),
    claimed under the same lock; a path's ``fixed`` point is claimed under it too. With
    ``open_in_order`` (a sampler whose ``before_trial`` picks from what earlier trials took,
    as a grid's unvisited points), the trials are opened under the lock as well: two opened at
    once would take the same point and leave another.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, but got {k=}")
    if fixed is not None:
        with lock.hold():
            room = n_trials - count_trials(engine, study.study_name).used
            return [_create_running(study, fixed)] if room > fixed.reserve else []
    if open_in_order:
        with lock.hold():
            with write(engine) as connection:
                ids, counts = _reserve(connection, study, n_trials=n_trials, k=k)
            if ids:
                return [open_trial(study, trial_id) for trial_id in ids]
    else:
        with lock.transaction() as connection:
            ids, counts = _reserve(connection, study, n_trials=n_trials, k=k)
    if not ids and not counts.running:  # the search may be over: look again, under the lock
        with lock.hold():
            with write(engine) as connection:  # a trial freed since (a retry queued) first
                ids, counts = _reserve(connection, study, n_trials=n_trials, k=k)
            if not ids and not counts.running:
                _supersede_waiting(study)
                trial = None if after_search is None else after_search()
                return [] if trial is None else [trial]
            if open_in_order:
                return [open_trial(study, trial_id) for trial_id in ids]
    return [open_trial(study, trial_id) for trial_id in ids]


def _reserve(
    connection: sa.Connection, study: optuna.Study, *, n_trials: int, k: int
) -> tuple[list[int], TrialCounts]:
    """The trials reserved on ``connection`` (as many as the budget has room for, up to
    ``k``), and the counts they were reserved by."""
    counts = count_trials(connection, study.study_name)
    room = n_trials - counts.used
    return (reserve_trials(connection, study, min(k, room)) if room > 0 else []), counts


def _supersede_waiting(study: optuna.Study) -> None:
    """Fail the search trials still queued once its budget is taken: they cannot run now."""
    for _ in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        asked = study.ask()  # the oldest waiting trial
        why = "superseded: the search's budget was taken"
        set_user_attrs(asked, {FAIL_REASON: why, FINAL_FAILURE: False})
        study.tell(asked, state=TrialState.FAIL)


def _create_running(study: optuna.Study, point: FixedPoint) -> optuna.Trial:
    template = optuna.trial.create_trial(
        state=TrialState.RUNNING,
        params=point.params,
        distributions=point.distributions,
        user_attrs=point.user_attrs,
    )
    trial_id = study._storage.create_new_trial(study._study_id, template_trial=template)
    return optuna.Trial(study, trial_id)


def finish_sweep(
    engine: sa.Engine, sweep_id: str, status: str, *, error: str | None = None
) -> bool:
    """End a queued or running sweep with a final ``status``; True if this call ended it.

    A sweep already final (cancelled by a user, finished by another worker) is left as it
    is, so every worker of a sweep may call this when it runs out of trials. The call that
    ends it writes its webhook events (and its batch's, if it was the batch's last) in the
    same transaction (:mod:`regcore.store._outbox`).
    """
    if status not in FINAL_STATUSES:
        raise ValueError(
            f"status must be a final one ({', '.join(FINAL_STATUSES)}), but got {status=}"
        )
    with write(engine) as connection:
        lock_batches(connection, [sweep_id])
        result = connection.execute(
            sa.update(sweeps)
            .where(sweeps.c.id == sweep_id, sweeps.c.status.in_(RUNNABLE_STATUSES))
            .values(status=status, finished_at=utcnow(), error=error)
        )
        if result.rowcount == 1:
            record_ends(connection, [sweep_id])  # its webhook events commit with the status
            return True
        exists = connection.execute(sa.select(sweeps.c.id).where(sweeps.c.id == sweep_id))
        if exists.first() is None:
            raise SweepNotFoundError(f"no sweep has id {sweep_id!r}; it may have been deleted")
        return False


def expire_sweeps(engine: sa.Engine) -> list[str]:
    """Mark queued or running sweeps whose deadline has passed ``deadline_reached``.

    The claim already skips them; this gives them their final status (call it from a
    worker's or the service's periodic loop). Returns the ids it ended; their webhook events
    are written in the same transaction.
    """
    now = utcnow()
    due = sa.and_(
        sweeps.c.status.in_(RUNNABLE_STATUSES),
        sweeps.c.deadline.is_not(None),
        sweeps.c.deadline <= now,
    )
    with read(engine) as connection:  # nearly every round: nothing due, no write lock taken
        if connection.execute(sa.select(sweeps.c.id).where(due).limit(1)).first() is None:
            return []
    with write(engine) as connection:
        candidates = list(connection.execute(sa.select(sweeps.c.id).where(due)).scalars())
        if not candidates:
            return []
        # Batches before sweeps, as every ending transaction locks them (no deadlock).
        lock_batches(connection, candidates)
        ids = list(
            connection.execute(
                sa.select(sweeps.c.id)
                .where(due, sweeps.c.id.in_(candidates))
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if ids:
            connection.execute(
                sa.update(sweeps)
                .where(sweeps.c.id.in_(ids), sweeps.c.status.in_(RUNNABLE_STATUSES))
                .values(status="deadline_reached", finished_at=now)
            )
            record_ends(connection, ids)
        return ids
