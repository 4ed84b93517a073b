"""A worker process's loop: what its planner decides is claimed, run, heartbeaten, retried, told.

``regsweep worker`` runs it until stopped; ``regsweep run`` starts N of them limited to its
sweep (``WorkerOptions.sweep_id``), which exit once that sweep has ended.

Each round: end sweeps whose deadline passed, then carry out what the worker's
:class:`~regcore.worker.claims.Planner` decides runs next (the one place that decides: a
sweep's trials claimed under exact budgets, its path, or its end) and run it
(:mod:`regcore.worker.execute`: one trial, K as a population, or a path) while
:mod:`regcore.worker.heartbeat` beats. ``stop()`` only sets an event (SIGTERM/SIGINT call
it): no new trial is claimed, the running one may finish within ``stop_wait_s``, else it is
stopped and its parameters queued again; the worker deregisters and returns. A lost database
connection is retried with backoff; the trial an outage cut off is failed (using no budget)
and queued again once the database answers (:mod:`regcore.worker.recovery`), and a worker
removed as stale meanwhile registers again. A sweep's end writes its webhook events in the
same transaction; every worker delivers the outbox's due events on a thread of its own
(:class:`Courier`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import sqlalchemy as sa

from regcore.notify.courier import Announcer, Courier
from regcore.notify.targets import WebhookTargets
from regcore.store import (
    SweepNotFoundError,
    WorkerNotFoundError,
    create_engine_and_storage,
    deregister_worker,
    expire_sweeps,
    get_sweep,
    register_worker,
    upgrade_database,
)
from regcore.sweeps.half_made import remove_half_made
from regcore.worker.claims import End, Planner
from regcore.worker.execute import Execution
from regcore.worker.functions import FunctionRunner
from regcore.worker.heartbeat import Heartbeat, Running, WorkerState
from regcore.worker.options import WorkerOptions
from regcore.worker.runner import DATABASE_ERRORS
from regcore.worker.threads import ThreadShare

_log = logging.getLogger(__name__)
_WEBHOOK_WAIT_S = 15.0  # at exit, for due webhooks (those left wait for other deliverers)


class Worker:
    """One worker process's loop; ``run()`` blocks until ``stop()`` (or its sweep's end)."""

    def __init__(self, *, options: WorkerOptions) -> None:
        self.options = options
        self.state = WorkerState()
        self._next_sweep_up = 0.0  # when to look for half-made studies next (monotonic)
        self._registering = threading.Lock()
        # Training functions run in a child process, reused from trial to trial.
        self._functions = FunctionRunner()

    @property
    def worker_id(self) -> str | None:
        return self.state.worker_id

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler)."""
        self.state.stop.set()
        if self.options.stop_wait_s == 0:
            self.state.abort.set()

    def run(self) -> None:
        o = self.options
        upgrade_database(o.database_url)
        # One pool of ``pool_size`` connections (PostgreSQL) for every thread of the worker:
        # the loop's claims and trials, the heartbeat, the courier.
        self._engine, self._storage = create_engine_and_storage(
            o.database_url,
            pool_size=o.pool_size,
            application_name=f"regsweep worker {socket.gethostname()}:{os.getpid()}",
            heartbeat_s=o.heartbeat_s,
            grace_s=o.grace_s,
        )
        # Delivers the outbox's webhooks on its own thread, so a slow receiver delays neither
        # claims nor heartbeats: any sweep's, or with ``sweep_id`` (``regsweep run``) that
        # sweep's alone (its allow list is its own: another's refusal here would be final).
        self._courier = Courier(
            database=lambda: (self._engine, self._storage),
            targets=WebhookTargets(o.webhook_allow),
            every_s=o.heartbeat_s,
            sweep_id=o.sweep_id,
        )
        self._announcer = Announcer(engine=self._engine, courier=self._courier)
        self._planner = Planner(
            engine=self._engine,
            storage=self._storage,
            device=o.device,
            grace_s=o.grace_s,
            max_retries=o.max_retries,
            idle_poll_s=o.idle_poll_s,
            only=o.sweep_id,
        )
        self._execution = Execution(
            state=self.state,
            storage=self._storage,
            functions=self._functions,
            device=None if o.device == "auto" else o.device,
            data_dir=o.data_dir,
            artifact_dir=o.artifact_dir,
            grace_s=o.grace_s,
            cancelled=self._cancelled,
        )
        self._register(None)
        self._threads = ThreadShare.for_worker(
            threads=o.threads,
            started_with=o.started_with,
            engine=self._engine,
            grace_s=o.grace_s,
            every_s=o.heartbeat_s,
        )
        _log.info(
            "worker %s on %s (device %s, %d torch threads) takes trials from %s",
            self.worker_id,
            socket.gethostname(),
            o.device,
            self._threads.apply(),
            sa.make_url(o.database_url).render_as_string(hide_password=True),
        )
        beat = Heartbeat(
            engine=self._engine,
            storage=self._storage,
            state=self.state,
            every_s=o.heartbeat_s,
            grace_s=o.grace_s,
            stop_wait_s=o.grace_s if o.stop_wait_s is None else o.stop_wait_s,
            register_again=self._register,
        )
        beat.start()
        self._courier.start()
        try:
            self._loop()
        finally:
            self.state.stop.set()
            self.state.done.set()
            beat.join()
            self._close()

    def _loop(self) -> None:
        backoff = 1.0
        while not self.state.stop.is_set():
            try:
                ran = self._round()
                backoff = 1.0
            except DATABASE_ERRORS as exc:
                _log.warning("database unreachable (%s); retrying in %.0f s", exc, backoff)
                self.state.stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if not ran:
                self.state.stop.wait(self.options.idle_poll_s)

    def _close(self) -> None:
        assert self.worker_id is not None
        try:
            self._execution.settle()
            deregister_worker(self._engine, self.worker_id)
        except DATABASE_ERRORS:
            _log.warning(
                "could not deregister worker %s: the database is unreachable", self.worker_id
            )
        self._functions.close()
        self._courier.close(drain_s=_WEBHOOK_WAIT_S)  # let the last sweep-ended events go out
        self._storage.remove_session()
        self._storage.engine.dispose()
        self._engine.dispose()  # the same engine, but on SQLite

    # -- one round: what the planner decides, carried out -------------------------------------

    def _round(self) -> bool:
        """Claim and run what :class:`Planner` decides; False when there was nothing to run."""
        assert self.worker_id is not None
        self._execution.settle()
        self._functions.threads = self._threads.apply()  # others may have come or gone
        for ended in expire_sweeps(self._engine):
            self._announcer.announce(ended)
        self._sweep_up()
        claim_started = time.perf_counter()  # after the announcements, which are not claims
        try:
            work = self._planner.next(self.worker_id)
        except WorkerNotFoundError:
            self._register(self.worker_id)  # removed as stale by another worker: come back
            return True
        if work is None:
            self.state.running = Running()
            if self.options.sweep_id is not None and self._ended(self.options.sweep_id):
                self.state.stop.set()  # the one sweep this worker is for is over
            return False
        if work == "later":
            return True
        if isinstance(work, End):
            self._announcer.end(work.sweep_id, work.status, error=work.error)
            return True
        self.state.claims += 1
        claims, sweep = work.claims, work.sweep
        if work.how == "path":
            self._execution.path(claims.study, claims.spec, sweep, claim=claims.point)
            return True
        self.state.claim_seconds += time.perf_counter() - claim_started
        _log.info("%s: trials %s started", sweep.name, [t.number for t in work.trials])
        if work.how == "single":
            self._execution.single(work.trials[0].study, work.trials[0], claims.spec, sweep)
        else:
            self._execution.population(
                claims.study, work.trials, claims.spec, sweep, size=work.size, claim=claims.refill
            )
        return True

    def _sweep_up(self) -> None:
        """Every grace period: remove the studies that submissions killed half-way left
        without their sweep (:func:`regcore.sweeps.half_made.remove_half_made`)."""
        now = time.monotonic()
        if now < self._next_sweep_up:
            return
        self._next_sweep_up = now + self.options.grace_s
        remove_half_made(self._engine, self._storage, older_than_s=self.options.grace_s)

    def _ended(self, sweep_id: str) -> bool:
        try:
            return get_sweep(self._engine, sweep_id).is_final
        except SweepNotFoundError:
            return True

    def _cancelled(self, sweep_id: str) -> bool:
        try:
            return get_sweep(self._engine, sweep_id).cancel_requested
        except SweepNotFoundError:
            return True

    def _register(self, lost_id: str | None) -> None:
        """Register this worker (again, if ``lost_id`` was removed as stale by another worker).

        A database outage longer than the grace period leaves every worker's heartbeat stale;
        whoever reconnects first removes the others. Both threads may notice: one registers.
        """
        with self._registering:
            if self.state.worker_id != lost_id:
                return  # the other thread has registered already
            if lost_id is not None:
                _log.warning("worker %s was removed as stale; registering again", lost_id)
            me = register_worker(
                self._engine,
                host=socket.gethostname(),
                pid=os.getpid(),
                device=self.options.device,
            )
            self.state.worker_id = me.id
