"""``regsweep worker``: a long-running process that claims trials of queued sweeps.

Each round: end sweeps whose deadline passed, claim the highest-priority runnable sweep
(:func:`regcore.store.claim_next_sweep`), claim one trial of it under the study's lock
(:func:`worker.budget.claim`, exact budgets) and run it. A heartbeat thread records the
worker's liveness, the running trial's Optuna heartbeat, and notices a cancelled or deleted
sweep. ``stop()`` only sets an event (SIGTERM/SIGINT call it): no new trial is claimed, the
running one may finish within ``grace_s``, else it is stopped and its parameters queued again;
the worker deregisters and returns. A lost database connection is retried with backoff.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import optuna
import sqlalchemy as sa
from optuna.trial import TrialState

from regcore.spec import SpecError, SweepSpec, parse_spec
from regcore.store import (
    StudyLock,
    SweepNotFoundError,
    SweepRow,
    WorkerNotFoundError,
    claim_next_sweep,
    create_engine_for,
    create_storage,
    deregister_worker,
    expire_sweeps,
    finish_sweep,
    get_sweep,
    heartbeat_worker,
    register_worker,
    stale_workers,
    upgrade_database,
)
from regcore.studies import SpecMismatchError, open_study
from worker.budget import budget, claim
from worker.runner import run_trial

_log = logging.getLogger(__name__)
_TRANSIENT = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    optuna.exceptions.StorageInternalError,
)


@dataclass(frozen=True, kw_only=True)
class WorkerOptions:
    database_url: str
    device: str = "auto"
    data_dir: Path | None = None
    heartbeat_s: float = 10.0
    grace_s: float = 60.0
    max_retries: int = 2
    idle_poll_s: float = 1.0
    pool_size: int = 2


@dataclass
class _Current:
    """What the heartbeat thread reports and watches."""

    sweep_id: str | None = None
    trial_number: int | None = None
    trial_id: int | None = None


class Worker:
    """One worker process's loop; ``run()`` blocks until ``stop()``."""

    def __init__(self, *, options: WorkerOptions) -> None:
        self.options = options
        self._stop = threading.Event()
        self._abort = threading.Event()  # stop the running trial now
        self._done = threading.Event()  # the loop has ended: the heartbeat thread ends too
        self._stopped_at: float | None = None
        self._current = _Current()
        self._studies: dict[str, optuna.Study] = {}
        self._locks: dict[str, StudyLock] = {}
        self._full: dict[str, float] = {}  # sweep id → until when its trials are all claimed
        self.worker_id: str | None = None

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler)."""
        self._stop.set()

    def run(self) -> None:
        o = self.options
        upgrade_database(o.database_url)
        self._engine = create_engine_for(o.database_url, pool_size=o.pool_size)
        self._storage = create_storage(
            o.database_url,
            pool_size=o.pool_size,
            heartbeat_s=o.heartbeat_s,
            grace_s=o.grace_s,
            max_retries=o.max_retries,
        )
        me = register_worker(
            self._engine, host=socket.gethostname(), pid=os.getpid(), device=o.device
        )
        self.worker_id = me.id
        beat = threading.Thread(target=self._heartbeat, name="worker-heartbeat", daemon=True)
        beat.start()
        backoff = 1.0
        try:
            while not self._stop.is_set():
                try:
                    ran = self._round()
                    backoff = 1.0
                except _TRANSIENT as exc:
                    _log.warning("database unreachable (%s); retrying in %.0f s", exc, backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                if not ran:
                    self._stop.wait(o.idle_poll_s)
        finally:
            self._stop.set()
            self._done.set()
            beat.join(timeout=o.heartbeat_s + 5)
            try:
                deregister_worker(self._engine, me.id)
            except _TRANSIENT:
                _log.warning("could not deregister worker %s: the database is unreachable", me.id)
            for lock in self._locks.values():
                lock.dispose()
            self._engine.dispose()
            self._storage.remove_session()

    # -- one round: claim a sweep, then a trial of it ------------------------------------------

    def _round(self) -> bool:
        """Claim and run one trial; False when there was nothing to run."""
        assert self.worker_id is not None
        expire_sweeps(self._engine)
        now = time.monotonic()
        self._full = {k: v for k, v in self._full.items() if v > now}
        sweep = claim_next_sweep(self._engine, worker_id=self.worker_id, exclude=tuple(self._full))
        if sweep is None:
            self._set_current(None, None, None)
            return False
        try:
            spec = parse_spec(sweep.spec)
            study = self._study(sweep, spec)
        except (SpecError, SpecMismatchError) as exc:
            # The sweep itself is broken (a workload since removed, a clashing study): end it
            # with the reason rather than fail on it round after round.
            finish_sweep(self._engine, sweep.id, "failed", error=str(exc))
            return True
        if self._timed_out(sweep, spec):
            finish_sweep(self._engine, sweep.id, "deadline_reached")
            return True
        optuna.storages.fail_stale_trials(study)
        if sweep.id not in self._locks:  # one lock (on PostgreSQL: one connection) per sweep
            self._locks[sweep.id] = StudyLock(self.options.database_url, sweep.study_name)
        trial = claim(study, spec.budget.n_trials, self._locks[sweep.id])
        if trial is None:
            state = budget(study, spec.budget.n_trials)
            if state.running == 0:
                finish_sweep(self._engine, sweep.id, "completed")
            else:  # others run its last trials: work on the next sweep meanwhile
                self._full[sweep.id] = now + self.options.idle_poll_s
            return True
        self._run(study, trial, spec, sweep)
        return True

    def _run(
        self, study: optuna.Study, trial: optuna.Trial, spec: SweepSpec, sweep: SweepRow
    ) -> None:
        self._abort.clear()
        self._set_current(sweep.id, trial.number, trial._trial_id)
        device = None if self.options.device == "auto" else self.options.device
        state = run_trial(
            study,
            trial,
            spec,
            data_dir=self.options.data_dir,
            device=device,
            should_stop=self._abort.is_set,
        )
        self._set_current(sweep.id, None, None)
        if state == TrialState.FAIL and self._stop.is_set() and not self._cancelled(sweep.id):
            frozen = study.get_trials(deepcopy=False)[trial.number]
            if frozen.user_attrs.get("interrupted"):
                # Stopped by our own shutdown, not by the trial: run these parameters again.
                attrs = {"retry_of": trial.number}
                if frozen.user_attrs.get("baseline"):
                    attrs["baseline"] = True  # the retried baseline still trains with λ = 0
                study.enqueue_trial(frozen.params, user_attrs=attrs)

    def _study(self, sweep: SweepRow, spec: SweepSpec) -> optuna.Study:
        if sweep.id not in self._studies:
            # Opens (or, if the worker is first, creates) the study with its baseline trial.
            self._studies[sweep.id] = open_study(
                spec, self._storage, user_attrs={"sweep_id": sweep.id}
            )
        return self._studies[sweep.id]

    @staticmethod
    def _timed_out(sweep: SweepRow, spec: SweepSpec) -> bool:
        if spec.budget.timeout_s is None or sweep.started_at is None:
            return False
        return datetime.now(UTC) >= sweep.started_at + timedelta(seconds=spec.budget.timeout_s)

    # -- the heartbeat thread ------------------------------------------------------------------

    def _set_current(self, sweep_id: str | None, number: int | None, trial_id: int | None) -> None:
        self._current = _Current(sweep_id=sweep_id, trial_number=number, trial_id=trial_id)

    def _cancelled(self, sweep_id: str) -> bool:
        try:
            return get_sweep(self._engine, sweep_id).cancel_requested
        except SweepNotFoundError:
            return True

    def _heartbeat(self) -> None:
        """Beat until the loop ends; abort the running trial when it must not go on."""
        o = self.options
        while not self._done.is_set():
            current = self._current
            try:
                if current.trial_id is not None:
                    self._storage.record_heartbeat(current.trial_id)
                assert self.worker_id is not None
                heartbeat_worker(
                    self._engine,
                    self.worker_id,
                    current_sweep_id=current.sweep_id,
                    current_trial_number=current.trial_number,
                    status="stopping" if self._stop.is_set() else None,
                )
                if current.sweep_id is not None and self._cancelled(current.sweep_id):
                    self._abort.set()
                for stale in stale_workers(self._engine, grace_s=o.grace_s):
                    deregister_worker(self._engine, stale.id)
            except (SweepNotFoundError, WorkerNotFoundError):
                self._abort.set()
            except _TRANSIENT as exc:
                _log.warning("heartbeat failed: %s", exc)
            wait = o.heartbeat_s
            if self._stop.is_set():
                self._stopped_at = self._stopped_at or time.monotonic()
                if time.monotonic() - self._stopped_at >= o.grace_s:
                    self._abort.set()  # past the grace period: stop the running trial
                wait = min(wait, 1.0)
            self._done.wait(wait)


def quiet_optuna() -> None:
    """Heartbeats with ask/tell are what this loop is for (OPTUNA5.md): not news every trial."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def worker_process_main(options: WorkerOptions) -> None:
    """Entry of one worker process (``--gpus all`` starts one per GPU)."""
    import signal

    quiet_optuna()
    worker = Worker(options=options)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: worker.stop())
    worker.run()
