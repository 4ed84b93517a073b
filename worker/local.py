"""A whole sweep on this machine: ``regsweep run SPEC [--workers N]``.

The parent process creates (or resumes) the study and watches it; ``N`` worker processes
claim trials under the study's lock (:mod:`worker.budget`) and run them. SIGINT/SIGTERM set
one stop event: each worker ends its running trial as ``FAIL`` marked ``interrupted`` (it
does not use up budget) and exits, so running the command again resumes the sweep.
A worker killed outright stops beating; its trial is failed after the grace period and
re-run with the same parameters.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Literal

import optuna
import torch
from optuna.trial import TrialState

from regcore.spec import SweepSpec, parse_spec
from regcore.spec._suggest import create_pruner, create_sampler
from regcore.store import StudyLock, count_trials, create_storage
from regcore.studies import open_study
from worker.budget import budget, claim
from worker.runner import run_trial

Outcome = Literal["completed", "interrupted", "deadline_reached"]
_POLL_S = 0.5


@dataclass(frozen=True, kw_only=True)
class LocalOptions:
    storage_url: str
    workers: int = 1
    data_dir: Path | None = None
    artifact_dir: Path | None = None  # where the best trials' weights go (optuna.artifacts)
    heartbeat_s: float = 10.0
    grace_s: float = 60.0
    max_retries: int = 2


@dataclass(frozen=True, kw_only=True)
class Progress:
    finished: int
    total: int
    running: int
    pruned: int
    failed: int
    best: float | None
    elapsed_s: float


def progress_of(
    storage: optuna.storages.RDBStorage, study: optuna.Study, n_trials: int, started: float
) -> Progress:
    counts = count_trials(storage.engine, study.study_name)
    best: float | None = None
    if len(study.directions) == 1:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        values = [t.value for t in complete if t.value is not None]
        if values:
            maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
            best = max(values) if maximize else min(values)
    return Progress(
        finished=counts.finished,
        total=n_trials,
        running=counts.running,
        pruned=counts.by_state["PRUNED"],
        failed=counts.by_state["FAIL"],
        best=best,
        elapsed_s=time.monotonic() - started,
    )


def _stop_at(spec: SweepSpec) -> float | None:
    """The wall-clock time after which no trial starts."""
    ends = []
    if spec.budget.timeout_s is not None:
        ends.append(time.time() + spec.budget.timeout_s)
    if spec.budget.deadline is not None:
        ends.append(spec.budget.deadline.timestamp())
    return min(ends) if ends else None


@contextmanager
def _heartbeat(
    storage: optuna.storages.RDBStorage, trial_id: int, every_s: float
) -> Iterator[None]:
    """Beat for ``trial_id`` while the block runs, from a thread."""
    done = threading.Event()

    def beat() -> None:
        while True:
            storage.record_heartbeat(trial_id)
            if done.wait(every_s):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _device_for(index: int, requested: str) -> str | None:
    """With ``auto`` and several GPUs, worker ``index`` takes GPU ``index mod n``."""
    count = torch.cuda.device_count()
    if requested == "auto" and count > 1:
        return f"cuda:{index % count}"
    return None


def worker_main(
    spec_data: dict[str, Any],
    options: LocalOptions,
    stop: Any,
    index: int,
    stop_at: float | None,
) -> None:
    """One worker process: claim, run, repeat until the budget or the time is used up."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // options.workers))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats with ask/tell are what this loop is for (OPTUNA5.md): not news each trial.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    spec = parse_spec(spec_data)
    storage = create_storage(
        options.storage_url,
        heartbeat_s=options.heartbeat_s,
        grace_s=options.grace_s,
        max_retries=options.max_retries,
    )
    study = optuna.load_study(
        study_name=spec.name,
        storage=storage,
        sampler=create_sampler(spec),
        pruner=create_pruner(spec),
    )
    lock = StudyLock(options.storage_url, spec.name)
    device = _device_for(index, spec.training.device)
    try:
        while not stop.is_set():
            if stop_at is not None and time.time() >= stop_at:
                return
            optuna.storages.fail_stale_trials(study)
            trial = claim(study, spec.budget.n_trials, lock, storage=storage)
            if trial is None:
                if budget(storage, spec.name, spec.budget.n_trials).running == 0:
                    return
                # Others are still running: one of them may die and need re-running.
                stop.wait(_POLL_S)
                continue
            with _heartbeat(storage, trial._trial_id, options.heartbeat_s):
                run_trial(
                    study,
                    trial,
                    spec,
                    data_dir=options.data_dir,
                    device=device,
                    should_stop=stop.is_set,
                    artifact_dir=options.artifact_dir,
                )
    finally:
        lock.dispose()
        storage.remove_session()


def run_local_sweep(
    spec: SweepSpec,
    options: LocalOptions,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> tuple[optuna.Study, Outcome]:
    """Run ``spec`` to its budget with ``options.workers`` processes; resume if it exists."""
    if options.workers < 1:
        raise ValueError(f"workers must be >= 1, but got {options.workers=}")
    storage = create_storage(options.storage_url)
    study = open_study(spec, storage)
    started = time.monotonic()
    stop_at = _stop_at(spec)
    context = multiprocessing.get_context("spawn")
    stop = context.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    processes = [
        context.Process(
            target=worker_main,
            args=(spec.to_json_dict(), options, stop, index, stop_at),
            name=f"regsweep-worker-{index}",
        )
        for index in range(options.workers)
    ]
    try:
        for process in processes:
            process.start()
        while any(p.is_alive() for p in processes):
            if on_progress is not None:
                on_progress(progress_of(storage, study, spec.budget.n_trials, started))
            multiprocessing.connection.wait([p.sentinel for p in processes], timeout=_POLL_S)
        for process in processes:
            process.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if on_progress is not None:
        on_progress(progress_of(storage, study, spec.budget.n_trials, started))
    if stop.is_set():
        return study, "interrupted"
    if budget(storage, spec.name, spec.budget.n_trials).exhausted:
        return study, "completed"
    crashed = [p.name for p in processes if p.exitcode != 0]
    if crashed:
        raise RuntimeError(
            f"{', '.join(crashed)} exited with an error (see the log above); the sweep is "
            f"saved: run the same command again to resume it"
        )
    return study, "deadline_reached"
