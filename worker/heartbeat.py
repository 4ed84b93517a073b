"""A worker's heartbeat thread, and the state the worker's loop shares with it.

Every ``heartbeat_s`` it records the worker's liveness (its row in ``workers``, with the
claim figures that ``/metrics`` exports) and the running trial's Optuna heartbeat, removes
workers whose heartbeat went stale, and sets ``abort`` when the running trial must not go on:
its sweep was cancelled or deleted, its deadline passed more than ``grace_s`` ago, or the
worker was asked to stop and ``stop_wait_s`` has passed since.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import optuna
import sqlalchemy as sa

from regcore.store import (
    SweepNotFoundError,
    WorkerNotFoundError,
    deregister_worker,
    get_sweep,
    heartbeat_worker,
    stale_workers,
)
from regcore.worker.runner import DATABASE_ERRORS

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Running:
    """What a worker runs now: its sweep, the number of its (first) trial, and the ids of
    every trial it holds (one, or a population's); empty between trials."""

    sweep_id: str | None = None
    trial_number: int | None = None
    trial_ids: tuple[int, ...] = ()


@dataclass
class WorkerState:
    """What a worker's loop and its heartbeat thread share. Each field is replaced whole,
    never changed in place, so a reader on the other thread sees an old or a new value."""

    worker_id: str | None = None
    running: Running = field(default_factory=Running)
    claims: int = 0
    claim_seconds: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)  # no new claims
    abort: threading.Event = field(default_factory=threading.Event)  # end the running trial now
    done: threading.Event = field(default_factory=threading.Event)  # the loop has ended


class Heartbeat:
    """Beats for ``state`` from a thread until ``state.done`` is set."""

    def __init__(
        self,
        *,
        engine: sa.Engine,
        storage: optuna.storages.RDBStorage,
        state: WorkerState,
        every_s: float,
        grace_s: float,
        stop_wait_s: float,
        register_again: Callable[[str], None],
    ) -> None:
        self._engine = engine
        self._storage = storage
        self._state = state
        self._every_s = every_s
        self._grace_s = grace_s
        self._stop_wait_s = stop_wait_s
        self._register_again = register_again
        self._stopped_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join(timeout=self._every_s + 5)

    def _run(self) -> None:
        state = self._state
        while not state.done.is_set():
            try:
                self._beat()
            except SweepNotFoundError:
                state.abort.set()
            except DATABASE_ERRORS as exc:
                _log.warning("heartbeat failed: %s", exc)
            wait = self._every_s
            if state.stop.is_set():
                self._stopped_at = self._stopped_at or time.monotonic()
                if time.monotonic() - self._stopped_at >= self._stop_wait_s:
                    state.abort.set()  # past the wait a stop allows: end the running trial
                wait = min(wait, 1.0)
            state.done.wait(wait)

    def _beat(self) -> None:
        state = self._state
        running, worker_id = state.running, state.worker_id
        assert worker_id is not None
        for trial_id in running.trial_ids:
            self._storage.record_heartbeat(trial_id)
        try:
            heartbeat_worker(
                self._engine,
                worker_id,
                current_sweep_id=running.sweep_id,
                current_trial_number=running.trial_number,
                status="stopping" if state.stop.is_set() else None,
                claims=state.claims,
                claim_seconds=state.claim_seconds,
            )
        except WorkerNotFoundError:
            # Removed as stale while the database was out of reach. The running trial goes
            # on: if it was failed as stale too, its next write says so (Worker._run).
            self._register_again(worker_id)
        if running.sweep_id is not None and self._must_stop(running.sweep_id):
            state.abort.set()
        for stale in stale_workers(self._engine, grace_s=self._grace_s):
            deregister_worker(self._engine, stale.id)

    def _must_stop(self, sweep_id: str) -> bool:
        """The running trial's sweep was cancelled or deleted, or its deadline passed more
        than ``grace_s`` ago (a trial running at the deadline may finish within the grace)."""
        try:
            sweep = get_sweep(self._engine, sweep_id)
        except SweepNotFoundError:
            return True
        if sweep.cancel_requested:
            return True
        grace = timedelta(seconds=self._grace_s)
        return sweep.deadline is not None and datetime.now(UTC) >= sweep.deadline + grace
