"""``regsweep run SPEC``: a whole sweep on this machine, run by the same workers as
``regsweep worker``.

The sweep is queued in the database like any other (so ``regsweep status``, ``report`` and
``export`` work on it), or resumed if it exists; ``N`` worker processes limited to it
(:class:`regcore.worker.options.WorkerOptions` ``sweep_id``) claim, run and tell its
trials, and exit once it has ended. This process only watches and reports progress.
SIGINT/SIGTERM stop the workers at once: each running trial ends as ``FAIL`` marked
``interrupted`` (it uses no budget) and is queued again, so the same command resumes the
sweep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import optuna
import sqlalchemy as sa

from regcore.spec import SweepSpec
from regcore.store import (
    SweepRow,
    count_trials,
    create_engine_for,
    create_storage,
    get_sweep,
    upgrade_database,
)
from regcore.sweeps.results import best_trial
from regcore.sweeps.studies import resume_sweep
from regcore.worker.options import WorkerOptions
from regcore.worker.processes import quiet_optuna, run_worker_processes
from regcore.worker.runner import DATABASE_ERRORS

Outcome = Literal["completed", "interrupted", "deadline_reached", "cancelled", "failed"]
_POLL_S = 0.5


@dataclass(frozen=True, kw_only=True)
class LocalOptions:
    """``workers`` processes, each with the options ``worker`` gives
    (``WorkerOptions.from_settings``: everything ``REGSWEEP_*`` says, the database and the
    webhooks' allow list included), limited to the sweep."""

    worker: WorkerOptions
    workers: int = 1

    @property
    def storage_url(self) -> str:
        return self.worker.database_url


@dataclass(frozen=True, kw_only=True)
class Progress:
    finished: int
    total: int
    running: int
    pruned: int
    failed: int
    best: float | None
    confirming: int = 0  # confirmation trials waiting or running (regcore.confirm)
    confirmed: int = 0


@dataclass(frozen=True, kw_only=True)
class LocalRun:
    """How ``regsweep run`` ended: the sweep's row (its status, error) and its study."""

    sweep: SweepRow
    study: optuna.Study
    outcome: Outcome
    finished: int  # the search's finished trials (of budget.n_trials)


def progress_of(engine: sa.Engine, study: optuna.Study, n_trials: int) -> Progress:
    counts = count_trials(engine, study.study_name)
    found = best_trial(study) if len(study.directions) == 1 else None
    best = None if found is None else found.value
    return Progress(
        finished=counts.finished,
        total=n_trials,
        running=counts.running,
        pruned=counts.by_state["PRUNED"],
        failed=counts.by_state["FAIL"],
        best=best,
        confirming=counts.confirming,
        confirmed=counts.confirm_by_state["COMPLETE"],
    )


def _device_for(index: int, requested: str) -> str:
    """With ``auto`` and several GPUs, worker ``index`` takes GPU ``index mod n``."""
    import torch

    count = torch.cuda.device_count()
    if requested == "auto" and count > 1:
        return f"cuda:{index % count}"
    return "auto"  # the spec's training.device


def _worker_options(options: LocalOptions, spec: SweepSpec, sweep_id: str) -> list[WorkerOptions]:
    return [
        replace(
            options.worker,
            device=_device_for(index, spec.training.device),
            idle_poll_s=_POLL_S,
            sweep_id=sweep_id,
            stop_wait_s=0.0,  # Ctrl-C ends the running trials now; they are queued again
            # The cores ÷ N threads each (or options.worker.threads), as `regsweep worker
            # --workers N` gives them: the same trial gives the same value either way.
            started_with=options.workers,
            log_level=logging.WARNING,  # the progress bar says what the INFO lines would
        )
        for index in range(options.workers)
    ]


def run_local_sweep(
    spec: SweepSpec,
    options: LocalOptions,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> LocalRun:
    """Run ``spec`` to its budget with ``options.workers`` processes; resume if it exists."""
    if options.workers < 1:
        raise ValueError(f"workers must be >= 1, but got {options.workers=}")
    quiet_optuna()
    upgrade_database(options.storage_url)
    engine = create_engine_for(options.storage_url, pool_size=1)
    storage = create_storage(options.storage_url, pool_size=1)
    try:
        sweep = resume_sweep(engine, storage, spec)
        study = optuna.load_study(study_name=sweep.study_name, storage=storage)
        watch = _Watch(engine, study, spec.budget.n_trials, on_progress)
        if not sweep.is_final:
            workers = _worker_options(options, spec, sweep.id)
            exited = run_worker_processes(workers, every=watch.show, every_s=_POLL_S)
            sweep = get_sweep(engine, sweep.id)
        else:  # it has run its budget: only its results to show
            watch.show()
        finished = count_trials(engine, sweep.study_name).finished
    finally:
        storage.remove_session()
        engine.dispose()
    if sweep.is_final:
        outcome: Outcome = sweep.status  # type: ignore[assignment]
        return LocalRun(sweep=sweep, study=study, outcome=outcome, finished=finished)
    if exited.stopped:
        return LocalRun(sweep=sweep, study=study, outcome="interrupted", finished=finished)
    raise RuntimeError(
        "the worker processes exited before the sweep ended (see the log above); it is "
        "saved: run the same command again to resume it"
    )


class _Watch:
    """Progress for ``on_progress``, read from the database every poll."""

    def __init__(
        self,
        engine: sa.Engine,
        study: optuna.Study,
        n_trials: int,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self._engine, self._study, self._n_trials = engine, study, n_trials
        self._on_progress = on_progress

    def show(self) -> None:
        if self._on_progress is None:
            return
        try:
            progress = progress_of(self._engine, self._study, self._n_trials)
        except DATABASE_ERRORS:
            return  # the workers ride out an outage; the bar catches up once it is over
        self._on_progress(progress)
