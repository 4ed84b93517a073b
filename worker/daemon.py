"""``regsweep worker``: a long-running process that claims trials of queued sweeps.

Each round: end sweeps whose deadline passed, claim the highest-priority runnable sweep
(:func:`regcore.store.claim_next_sweep`), claim one trial of it under the study's lock
(:func:`worker.budget.claim`, exact budgets) and run it. A heartbeat thread records the
worker's liveness, the running trial's Optuna heartbeat, and notices a cancelled or deleted
sweep. ``stop()`` only sets an event (SIGTERM/SIGINT call it): no new trial is claimed, the
running one may finish within ``grace_s``, else it is stopped and its parameters queued again;
the worker deregisters and returns. A lost database connection is retried with backoff; the
trial an outage cut off is failed (using no budget) and queued again once the database
answers, and a worker removed as stale meanwhile registers again.
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

from regcore.announce import announce_end
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
from worker.runner import DATABASE_ERRORS, run_trial

_log = logging.getLogger(__name__)
_WEBHOOK_WAIT_S = 15.0  # at exit, for webhooks still being sent
_TRANSIENT = DATABASE_ERRORS


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
    artifact_dir: Path | None = None  # where the best trials' weights go (optuna.artifacts)


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
        self._claims, self._claim_seconds = 0, 0.0  # written out by the heartbeat
        self.worker_id: str | None = None
        self._registering = threading.Lock()
        # A trial an outage cut off: its outcome never reached the database (see _settle).
        self._unsettled: tuple[optuna.Study, int] | None = None
        self._webhooks: list[threading.Thread] = []  # sending the ends of sweeps

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
        self._register(None)
        _log.info(
            "worker %s on %s (device %s) takes trials from %s",
            self.worker_id,
            socket.gethostname(),
            o.device,
            sa.make_url(o.database_url).render_as_string(hide_password=True),
        )
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
            assert self.worker_id is not None
            try:
                self._settle()
                deregister_worker(self._engine, self.worker_id)
            except _TRANSIENT:
                _log.warning(
                    "could not deregister worker %s: the database is unreachable", self.worker_id
                )
            for lock in self._locks.values():
                lock.dispose()
            deadline = time.monotonic() + _WEBHOOK_WAIT_S
            for thread in self._webhooks:  # let the last sweep-ended messages go out
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            self._engine.dispose()
            self._storage.remove_session()

    # -- one round: claim a sweep, then a trial of it ------------------------------------------

    def _round(self) -> bool:
        """Claim and run one trial; False when there was nothing to run."""
        assert self.worker_id is not None
        self._settle()
        for ended in expire_sweeps(self._engine):
            self._announce(ended)
        claim_started = time.perf_counter()  # after the announcements, which are not claims
        now = time.monotonic()
        self._full = {k: v for k, v in self._full.items() if v > now}
        try:
            sweep = claim_next_sweep(
                self._engine, worker_id=self.worker_id, exclude=tuple(self._full)
            )
        except WorkerNotFoundError:
            self._register(self.worker_id)  # removed as stale by another worker: come back
            return True
        if sweep is None:
            self._set_current(None, None, None)
            return False
        try:
            spec = parse_spec(sweep.spec)
            study = self._study(sweep, spec)
        except (SpecError, SpecMismatchError) as exc:
            # The sweep itself is broken (a workload since removed, a clashing study): end it
            # with the reason rather than fail on it round after round.
            self._end(sweep.id, "failed", error=str(exc))
            return True
        if self._timed_out(sweep, spec):
            self._end(sweep.id, "deadline_reached")
            return True
        optuna.storages.fail_stale_trials(study)
        if sweep.id not in self._locks:  # one lock (on PostgreSQL: one connection) per sweep
            self._locks[sweep.id] = StudyLock(self.options.database_url, sweep.study_name)
        trial = claim(study, spec.budget.n_trials, self._locks[sweep.id], storage=self._storage)
        if trial is None:
            state = budget(self._storage, sweep.study_name, spec.budget.n_trials)
            if state.running == 0:
                self._end(sweep.id, "completed")
            else:  # others run its last trials: work on the next sweep meanwhile
                self._full[sweep.id] = now + self.options.idle_poll_s
            return True
        self._claims += 1
        self._claim_seconds += time.perf_counter() - claim_started
        _log.info("%s: trial %d started", sweep.name, trial.number)
        self._run(study, trial, spec, sweep)
        return True

    def _end(self, sweep_id: str, status: str, *, error: str | None = None) -> None:
        if finish_sweep(self._engine, sweep_id, status, error=error):
            self._announce(sweep_id)  # this worker ended it: nobody else announces it

    def _announce(self, sweep_id: str) -> None:
        """Log a sweep's end and send its webhooks (and its batch's); never raises."""
        try:
            sweep = get_sweep(self._engine, sweep_id)
            _log.info("%s: %s", sweep.name, sweep.status)
            self._webhooks = [t for t in self._webhooks if t.is_alive()]
            self._webhooks += announce_end(self._engine, self._storage, sweep_id)
        except Exception as exc:  # a message must never take the worker down
            _log.warning("could not announce the end of sweep %s: %s", sweep_id, exc)

    def _run(
        self, study: optuna.Study, trial: optuna.Trial, spec: SweepSpec, sweep: SweepRow
    ) -> None:
        self._abort.clear()
        self._set_current(sweep.id, trial.number, trial._trial_id)
        device = None if self.options.device == "auto" else self.options.device
        try:
            # A heartbeat row from the start: a RUNNING trial without one is never stale, so
            # it would hold its budget slot forever if this worker died before its first beat.
            self._storage.record_heartbeat(trial._trial_id)
            state = run_trial(
                study,
                trial,
                spec,
                data_dir=self.options.data_dir,
                device=device,
                should_stop=self._abort.is_set,
                artifact_dir=self.options.artifact_dir,
            )
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            if not self._finished_elsewhere(trial._trial_id):
                raise
            # The database was out of reach longer than the grace period, so another worker
            # failed this trial as stale and queued its parameters again: that retry counts.
            _log.warning(
                "trial %d of %s was failed as stale while the database was unreachable; "
                "its retry is queued",
                trial.number,
                study.study_name,
            )
            return
        except _TRANSIENT:
            self._unsettled = (study, trial._trial_id)  # still RUNNING, or told: see _settle
            raise
        finally:
            self._set_current(sweep.id, None, None)  # stop beating for it, whatever happened
        _log.info("%s: trial %d %s", sweep.name, trial.number, state.name)
        if state == TrialState.FAIL and self._stop.is_set() and not self._cancelled(sweep.id):
            frozen = study.get_trials(deepcopy=False)[trial.number]
            if frozen.user_attrs.get("interrupted"):
                # Stopped by our own shutdown, not by the trial: run these parameters again.
                self._requeue(study, frozen)

    @staticmethod
    def _requeue(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        attrs = {"retry_of": frozen.number}
        if frozen.user_attrs.get("baseline"):
            attrs["baseline"] = True  # the retried baseline still trains with λ = 0
        # A trial cut off before its suggestions has only the parameters it was queued with.
        params = {**frozen.system_attrs.get("fixed_params", {}), **frozen.params}
        study.enqueue_trial(params, user_attrs=attrs)

    def _settle(self) -> None:
        """End the trial an outage cut off, once the database answers again, and queue it anew.

        Nothing is left to do when its ``tell`` reached the database before the connection
        dropped, or another worker already failed it as stale (and queued the retry). Else it
        is failed as not final (it uses no budget) and its parameters run again, at once rather
        than after the grace period; it may never have had a heartbeat to go stale by.
        """
        if self._unsettled is None:
            return
        study, trial_id = self._unsettled
        try:
            self._storage.set_trial_user_attr(
                trial_id, "fail_reason", "interrupted: the database was unreachable"
            )
            self._storage.set_trial_user_attr(trial_id, "final_failure", False)
            failed = self._storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            failed = False
        if failed:
            frozen = self._storage.get_trial(trial_id)
            _log.warning(
                "trial %d of %s was cut off by a database outage; running it again",
                frozen.number,
                study.study_name,
            )
            self._requeue(study, frozen)
        self._unsettled = None

    def _finished_elsewhere(self, trial_id: int) -> bool:
        return self._storage.get_trial(trial_id).state.is_finished()

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

    def _register(self, lost_id: str | None) -> None:
        """Register this worker (again, if ``lost_id`` was removed as stale by another worker).

        A database outage longer than the grace period leaves every worker's heartbeat stale;
        whoever reconnects first removes the others. Both threads may notice: one registers.
        """
        with self._registering:
            if self.worker_id != lost_id:
                return  # the other thread has registered already
            if lost_id is not None:
                _log.warning("worker %s was removed as stale; registering again", lost_id)
            me = register_worker(
                self._engine,
                host=socket.gethostname(),
                pid=os.getpid(),
                device=self.options.device,
            )
            self.worker_id = me.id

    def _set_current(self, sweep_id: str | None, number: int | None, trial_id: int | None) -> None:
        self._current = _Current(sweep_id=sweep_id, trial_number=number, trial_id=trial_id)

    def _cancelled(self, sweep_id: str) -> bool:
        try:
            return get_sweep(self._engine, sweep_id).cancel_requested
        except SweepNotFoundError:
            return True

    def _must_stop(self, sweep_id: str) -> bool:
        """The running trial's sweep was cancelled or deleted, or its deadline passed more
        than ``grace_s`` ago (a trial running at the deadline may finish within the grace)."""
        try:
            sweep = get_sweep(self._engine, sweep_id)
        except SweepNotFoundError:
            return True
        if sweep.cancel_requested:
            return True
        grace = timedelta(seconds=self.options.grace_s)
        return sweep.deadline is not None and datetime.now(UTC) >= sweep.deadline + grace

    def _heartbeat(self) -> None:
        """Beat until the loop ends; abort the running trial when it must not go on."""
        o = self.options
        while not self._done.is_set():
            current, worker_id = self._current, self.worker_id
            try:
                if current.trial_id is not None:
                    self._storage.record_heartbeat(current.trial_id)
                assert worker_id is not None
                try:
                    heartbeat_worker(
                        self._engine,
                        worker_id,
                        current_sweep_id=current.sweep_id,
                        current_trial_number=current.trial_number,
                        status="stopping" if self._stop.is_set() else None,
                        claims=self._claims,
                        claim_seconds=self._claim_seconds,
                    )
                except WorkerNotFoundError:
                    # Removed as stale while the database was out of reach. The running trial
                    # goes on: if it was failed as stale too, its next write says so (_run).
                    self._register(worker_id)
                if current.sweep_id is not None and self._must_stop(current.sweep_id):
                    self._abort.set()
                for stale in stale_workers(self._engine, grace_s=o.grace_s):
                    deregister_worker(self._engine, stale.id)
            except SweepNotFoundError:
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
    if not logging.getLogger().handlers:  # a line per trial and per sweep's end
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(processName)s %(levelname)s %(message)s"
        )
    worker = Worker(options=options)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: worker.stop())
    worker.run()
