"""Several worker processes from one parent: ``regsweep worker --gpus all`` (one per GPU) and
``regsweep run`` (N on one sweep).

SIGINT/SIGTERM reaching the parent are passed on to every worker (``docker stop`` and
``kill`` signal the parent alone; Ctrl-C reaches the whole process group, and a second stop
request changes nothing for a worker already stopping). The parent waits for all of them.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

import optuna

from regcore.worker.daemon import Worker
from regcore.worker.options import WorkerOptions
from regcore.workloads import WorkloadPluginError, load_plugin_modules

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True, kw_only=True)
class Exited:
    failed: int  # processes that exited with an error
    stopped: bool  # a stop signal reached the parent


def quiet_optuna() -> None:
    """Heartbeats with ask/tell are what this loop is for: not news every trial."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")


def worker_process_main(options: WorkerOptions) -> None:
    """Entry of one worker process (``--gpus all`` and ``regsweep run`` start several)."""
    quiet_optuna()  # the worker sets torch's threads per trial (regcore.worker.threads)
    if not logging.getLogger().handlers:  # a line per trial and per sweep's end
        logging.basicConfig(
            level=options.log_level,
            format="%(asctime)s %(processName)s %(levelname)s %(message)s",
        )
    try:
        load_plugin_modules(options.plugins)
    except WorkloadPluginError as exc:
        logging.getLogger(__name__).error("%s", exc)
        sys.exit(2)
    worker = Worker(options=options)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: worker.stop())
    worker.run()


def run_worker_processes(
    options: list[WorkerOptions],
    *,
    every: Callable[[], None] | None = None,
    every_s: float = 0.5,
) -> Exited:
    """One worker process per entry of ``options``, until all have exited; ``every()`` is
    called every ``every_s`` seconds meanwhile, and once at the end (to show progress)."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=worker_process_main, args=(o,), name=f"regsweep-worker-{i}-{o.device}"
        )
        for i, o in enumerate(options)
    ]
    signals: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        signals.append(signum)
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    previous = {s: signal.signal(s, forward) for s in _STOP_SIGNALS}
    try:
        for process in processes:
            process.start()
        while any(p.is_alive() for p in processes):
            if every is not None:
                every()
            multiprocessing.connection.wait([p.sentinel for p in processes], timeout=every_s)
        for process in processes:
            process.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if every is not None:
        every()
    return Exited(failed=sum(p.exitcode != 0 for p in processes), stopped=bool(signals))
