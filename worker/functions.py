"""Training functions run in a child process of the worker: whatever they do fails only their
trial.

One child per worker, started on first use and reused while it lives (``import torch`` and
the plug-ins are paid once, not per trial). Per trial the worker sends a :class:`FunctionCall`;
the child builds the :class:`~regcore.workloads.TrialContext` and calls the function; each
``ctx.report`` travels to the worker, which reports to Optuna and answers ``go``, ``prune`` or
``stop`` (cancel, deadline, shutdown); the child raises :class:`~regcore.workloads.TrialStopped`
on the last two. A function that raises, exhausts memory or returns bad metrics ends as a
:class:`FunctionOutcome` with the reason; one that kills its process (``os._exit``, a
segfault) is noticed by its exit, and one that ignores a stop request is terminated after
``grace_s``. The next trial gets a fresh child. A child whose worker dies exits too.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import multiprocessing
import multiprocessing.connection
import signal
import time
from collections.abc import Callable
from typing import Any

from regcore.worker.function_process import FunctionCall, FunctionOutcome, Verdict, child_main
from regcore.worker.training import DivergedError, EarlyStop, TrainingInterrupted, TrainResult

_log = logging.getLogger(__name__)
_POLL_S = 0.1


class FunctionRunner:
    """Runs training functions in a reused child process (see the module's docstring)."""

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads  # the child's torch threads, per call (regcore.worker.threads)
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._stop = self._context.Event()

    def run(
        self,
        call: FunctionCall,
        *,
        on_report: Callable[[int, dict[str, float]], Verdict],
        should_stop: Callable[[], bool],
        grace_s: float,
    ) -> FunctionOutcome:
        """Run ``call`` to its outcome. ``on_report`` errors (a lost database) propagate, after
        the child is ended: it would wait for an answer forever."""
        conn = self._start()
        self._stop.clear()
        conn.send(dataclasses.replace(call, threads=self.threads))
        given: Verdict = "go"  # the last answer that ended the trial, whatever it returns
        stopping_since: float | None = None
        while True:
            if conn.poll(_POLL_S):
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    return self._died()
                if message[0] == "outcome":
                    return _as_given(message[1], given)
                _, epoch, metrics = message
                try:
                    verdict = "stop" if should_stop() else on_report(epoch, metrics)
                except BaseException:
                    self.close(kill=True)
                    raise
                conn.send(verdict)
                given = verdict if verdict != "go" else given
            elif not self._process.is_alive():
                return self._died()
            if should_stop() and stopping_since is None:
                self._stop.set()
                stopping_since = time.monotonic()
            if stopping_since is not None and time.monotonic() - stopping_since > grace_s:
                self.close(kill=True)
                reason = f"stopped: it did not stop within {grace_s:g} s and was terminated"
                return FunctionOutcome(kind="interrupted", reason=reason)

    def close(self, *, kill: bool = False) -> None:
        """End the child (at once with ``kill``, else when it has finished its trial)."""
        if self._process is None:
            return
        if kill or not self._process.is_alive():
            self._process.kill()
        else:
            assert self._conn is not None
            self._conn.send(None)
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        if self._conn is not None:
            self._conn.close()
        self._process = self._conn = None

    def _start(self) -> multiprocessing.connection.Connection:
        if self._process is not None and self._process.is_alive():
            assert self._conn is not None
            return self._conn
        self.close()
        parent, child = self._context.Pipe()
        self._process = self._context.Process(
            target=child_main,
            args=(child, self._stop),
            name="regsweep-training-function",
            daemon=True,
        )
        self._process.start()
        child.close()
        self._conn = parent
        return parent

    def _died(self) -> FunctionOutcome:
        code = None
        if self._process is not None:
            self._process.join(timeout=5)  # its exit code, once it is reaped
            code = self._process.exitcode
        self.close(kill=True)
        if code is not None and code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        return FunctionOutcome(kind="died", reason=f"the training function's process {how}")


def _as_given(outcome: FunctionOutcome, given: Verdict) -> FunctionOutcome:
    """A function that caught the stop and returned anyway still ends as it was told."""
    if given == "prune" and outcome.kind != "pruned":
        return FunctionOutcome(kind="pruned", reason="pruned", history=outcome.history)
    if given == "stop" and outcome.kind != "interrupted":
        return FunctionOutcome(kind="interrupted", reason="stopped", history=outcome.history)
    return outcome


# -- in the worker: a trial of a training function, as the runner sees it -----------------------


class TrialFailed(RuntimeError):
    """A training function's trial failed for a reason of its own (``reason`` says which)."""


def train_function(
    runner: FunctionRunner,
    call: FunctionCall,
    *,
    on_epoch: Callable[[int, dict[str, float]], None],
    should_stop: Callable[[], bool],
    grace_s: float,
    early_stop: EarlyStop | None = None,
    ran: Callable[[str], None] | None = None,
) -> TrainResult:
    """Run ``call`` and return what it measured, or raise as the built-in loop does:
    ``optuna.TrialPruned``, :class:`~regcore.worker.training.TrainingInterrupted`,
    :class:`~regcore.worker.training.DivergedError` (``on_epoch`` found a non-finite objective), or
    :class:`TrialFailed` with the reason (error, out of memory, invalid, died). With
    ``early_stop`` the trial ends, as done, once its monitored metric stops improving.
    ``ran`` hears which code the child ran (its provenance: the child imports plug-ins
    itself, maybe after they were edited), however the trial ended."""
    import optuna

    diverged: list[DivergedError] = []

    def on_report(epoch: int, metrics: dict[str, float]) -> Verdict:
        try:
            on_epoch(epoch, metrics)
        except optuna.TrialPruned:
            return "prune"
        except DivergedError as exc:
            diverged.append(exc)
            return "stop"  # the child stops as asked, and is reused for the next trial
        if early_stop is not None:
            early_stop.improved(epoch, metrics)
            if early_stop.spent:
                return "enough"
        return "go"

    started = time.perf_counter()
    outcome = runner.run(call, on_report=on_report, should_stop=should_stop, grace_s=grace_s)
    if ran is not None and outcome.code:
        ran(outcome.code)
    if diverged:
        raise diverged[0]
    if outcome.kind == "pruned":
        raise optuna.TrialPruned(outcome.reason)
    if outcome.kind == "interrupted":
        raise TrainingInterrupted(outcome.reason)
    if outcome.kind != "done":
        words = {"out_of_memory": "out of memory", "died": "died"}.get(outcome.kind, outcome.kind)
        raise TrialFailed(f"{words}: {outcome.reason}")
    return TrainResult(
        metrics=outcome.metrics,
        history=outcome.history,
        epochs_run=len(outcome.history) or call.epochs,
        train_loss=outcome.metrics.get("train_loss", math.nan),
        wall_s=time.perf_counter() - started,
        device=outcome.device,
    )
