"""A worker process's loop: the one place a trial is claimed, run, heartbeaten, retried and told.

``regsweep worker`` runs it until stopped; ``regsweep run`` starts N of them limited to its
sweep (``WorkerOptions.sweep_id``), which exit once that sweep has ended.

Each round: end sweeps whose deadline passed, claim the highest-priority runnable sweep
(:func:`regcore.store.claim_next_sweep`), claim one trial of it under the study's lock
(:func:`regcore.store.claim_trials`, exact budgets) and run it (:mod:`regcore.worker.execute`: one
trial, or K as a population) while :mod:`regcore.worker.heartbeat`
beats. ``stop()`` only sets an event (SIGTERM/SIGINT call it): no new trial is claimed, the
running one may finish within ``stop_wait_s``, else it is stopped and its parameters queued
again; the worker deregisters and returns. A lost database connection is retried with
backoff; the trial an outage cut off is failed (using no budget) and queued again once the
database answers (:mod:`regcore.worker.recovery`), and a worker removed as stale meanwhile
registers again. A sweep's end writes its webhook events in the same transaction; every
worker delivers the outbox's due events on a thread of its own (:class:`Courier`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import optuna
import sqlalchemy as sa

from regcore.notify.announce import Announcer
from regcore.notify.courier import Courier
from regcore.notify.targets import WebhookTargets
from regcore.spec import SpecError, SweepSpec, parse_spec
from regcore.store import (
    SweepNotFoundError,
    SweepRow,
    WorkerNotFoundError,
    claim_next_sweep,
    create_engine_and_storage,
    deregister_worker,
    expire_sweeps,
    get_sweep,
    is_live_worker,
    register_worker,
    upgrade_database,
)
from regcore.sweeps.half_made import remove_half_made
from regcore.sweeps.studies import SpecMismatchError
from regcore.trial_kinds import rules_of
from regcore.worker import recovery
from regcore.worker.claims import Buildable, HeldSweeps, SweepClaims
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
        self._full: dict[str, float] = {}  # sweep id → until when its trials are all claimed
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
        self._buildable = Buildable(engine=self._engine)
        self._held = HeldSweeps(engine=self._engine, storage=self._storage, device=o.device)
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

    # -- one round: claim a sweep, then a trial of it ------------------------------------------

    def _round(self) -> bool:
        """Claim and run one trial; False when there was nothing to run."""
        assert self.worker_id is not None
        self._execution.settle()
        self._functions.threads = self._threads.apply()  # others may have come or gone
        for ended in expire_sweeps(self._engine):
            self._announcer.announce(ended)
        self._sweep_up()
        claim_started = time.perf_counter()  # after the announcements, which are not claims
        now = time.monotonic()
        self._full = {k: v for k, v in self._full.items() if v > now}
        try:
            sweep = claim_next_sweep(
                self._engine,
                worker_id=self.worker_id,
                exclude=(*self._full, *self._buildable.left),
                only=self.options.sweep_id,
                accept=self._buildable.accept,
            )
            self._buildable.tell(self.worker_id)
        except WorkerNotFoundError:
            self._register(self.worker_id)  # removed as stale by another worker: come back
            return True
        if sweep is None:
            self.state.running = Running()
            if self.options.sweep_id is not None and self._ended(self.options.sweep_id):
                self.state.stop.set()  # the one sweep this worker is for is over
            return False
        try:
            spec = parse_spec(sweep.spec)  # it parsed when claimed (Buildable.accept)
            study = self._held.study(sweep, spec)
        except (SpecError, SpecMismatchError) as exc:
            # The sweep clashes with its study: end it with the reason rather than fail on
            # it round after round.
            self._announcer.end(sweep.id, "failed", error=str(exc))
            return True
        if self._timed_out(sweep, spec):
            self._announcer.end(sweep.id, "deadline_reached")
            return True
        self._recover(study)
        size = self._held.size(sweep, spec)
        claims = self._held.claims(sweep, spec, recover=self._recover)
        if claims.path_due():
            return self._path(claims, sweep)
        trials = claims.next(size)
        if not trials:
            if claims.over():
                self._announcer.end(sweep.id, "completed")
            else:  # others run its last trials: work on the next sweep meanwhile
                self._full[sweep.id] = now + self.options.idle_poll_s
            return True
        self.state.claims += 1
        self.state.claim_seconds += time.perf_counter() - claim_started
        _log.info("%s: trials %s started", sweep.name, [t.number for t in trials])
        if size == 1 or not rules_of(trials[0]).in_search_study:  # a confirmation: its seed
            self._execution.single(trials[0].study, trials[0], spec, sweep)
        else:
            self._execution.population(study, trials, spec, sweep, size=size, claim=claims.refill)
        return True

    def _path(self, claims: SweepClaims, sweep: SweepRow) -> bool:
        """Walk the sweep's path if no other live worker does (:mod:`regcore.worker.path`)."""
        assert self.worker_id is not None

        def alive(worker_id: str) -> bool:
            return is_live_worker(self._engine, worker_id, grace_s=self.options.grace_s)

        if not claims.take_path(self.worker_id, alive=alive):
            # Another worker walks it: work on the next sweep meanwhile.
            self._full[sweep.id] = time.monotonic() + self.options.idle_poll_s
            return True
        self.state.claims += 1
        self._execution.path(claims.study, claims.spec, sweep, claim=claims.point)
        return True

    def _recover(self, study: optuna.Study) -> None:
        """End ``study``'s trials whose workers died (their retries are queued)."""
        o = self.options
        recovery.recover(
            self._engine, self._storage, study, grace_s=o.grace_s, max_retries=o.max_retries
        )

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

    @staticmethod
    def _timed_out(sweep: SweepRow, spec: SweepSpec) -> bool:
        if spec.budget.timeout_s is None or sweep.started_at is None:
            return False
        return datetime.now(UTC) >= sweep.started_at + timedelta(seconds=spec.budget.timeout_s)

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
