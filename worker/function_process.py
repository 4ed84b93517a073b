"""What runs in a training function's child process (see :mod:`regcore.worker.functions`), and the
messages between it and its worker: it receives :class:`FunctionCall`s, builds each one's
:class:`~regcore.workloads.TrialContext`, calls the function and sends back a
:class:`FunctionOutcome`, relaying every ``ctx.report`` to the worker on the way (which
answers with a :data:`Verdict`).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# "enough": a path point's patience ran out; the trial ends as if the function returned.
Verdict = Literal["go", "prune", "stop", "enough"]
Kind = Literal["done", "pruned", "interrupted", "out_of_memory", "error", "invalid", "died"]


@dataclass(frozen=True, kw_only=True)
class FunctionCall:
    """One trial of a training function, as plain data for the child."""

    workload: str
    plugins: tuple[str, ...]  # modules to import first (REGSWEEP_PLUGINS)
    l1: float
    l2: float
    method: str
    lr: float
    epochs: int
    seed: int
    device: str
    params: dict[str, Any]
    data_dir: Path | None
    number: int
    regularize: dict[str, Any] = field(default_factory=dict)
    warm_from: Path | None = None  # a path point: the weights it starts from
    warm_to: Path | None = None  # where its own weights go when it ends (a path's trials)
    threads: int | None = None  # torch's threads: its worker's share (regcore.worker.threads)


@dataclass(frozen=True, kw_only=True)
class FunctionOutcome:
    kind: Kind
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)  # returned, and measured after
    history: list[dict[str, float]] = field(default_factory=list)
    device: str = ""
    code: str = ""  # which code ran: the provenance of the function as this child imported it


def child_main(conn: multiprocessing.connection.Connection, stop: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when its trial stops
    parent = multiprocessing.parent_process()
    if parent is not None:  # never outlive the worker (kill -9 included)
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    import torch

    while (call := conn.recv()) is not None:
        if call.threads is not None and call.threads != torch.get_num_threads():
            torch.set_num_threads(call.threads)  # the worker's share, which others may change
        outcome = _run(call, conn, stop)
        conn.send(("outcome", dataclasses.replace(outcome, code=_code(call.workload))))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the next trial starts with the device's memory free


def _code(workload: str) -> str:
    """The provenance of the code this process imported for ``workload`` ("" if none)."""
    from regcore.workloads import WorkloadError, get_workload, provenance

    try:
        return provenance(get_workload(workload))
    except WorkloadError:
        return ""


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _run(
    call: FunctionCall, conn: multiprocessing.connection.Connection, stop: Any
) -> FunctionOutcome:
    import torch
    from pydantic import ValidationError

    from regcore.worker.device import resolve_device
    from regcore.worker.training import regularization_metrics
    from regcore.workloads import (
        TrainingFunction,
        TrialContext,
        TrialStopped,
        get_workload,
        load_plugin_modules,
    )

    def report(epoch: int, metrics: dict[str, float]) -> None:
        conn.send(("report", epoch, metrics))
        verdict = conn.recv()
        if verdict == "prune":
            raise TrialStopped(f"pruned after epoch {epoch + 1}", pruned=True)
        if verdict == "stop":
            raise TrialStopped("stopped: its sweep ended or its worker is stopping", pruned=False)
        if verdict == "enough":
            raise TrialStopped(f"no better after epoch {epoch + 1}", pruned=False, done=True)

    try:
        load_plugin_modules(call.plugins)
        function = get_workload(call.workload)
        assert isinstance(function, TrainingFunction), f"{call.workload} is no training function"
        params = function.Params.model_validate(call.params).model_dump(mode="json")
        device = resolve_device(call.device)
    except (ValidationError, ValueError) as exc:
        return FunctionOutcome(kind="invalid", reason=" ".join(str(exc).split()))
    ctx = TrialContext(
        l1=call.l1,
        l2=call.l2,
        method=call.method,
        lr=call.lr,
        epochs=call.epochs,
        seed=call.seed,
        device=device,
        params=params,
        data_dir=call.data_dir,
        number=call.number,
        regularize=call.regularize,
        _report=report,
        _should_stop=stop.is_set,
        warm_from=call.warm_from,
    )
    torch.manual_seed(call.seed)
    try:
        returned: object = function(ctx)
    except TrialStopped as exc:
        if not exc.done:
            kind: Kind = "pruned" if exc.pruned else "interrupted"
            return FunctionOutcome(kind=kind, reason=str(exc), history=ctx.history)
        # A path point that stopped improving: what it reported last stands.
        returned = {k: v for k, v in ctx.history[-1].items() if k != "epoch"}
    except torch.OutOfMemoryError as exc:
        reason = str(exc).splitlines()[0]
        return FunctionOutcome(kind="out_of_memory", reason=reason, history=ctx.history)
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        reason = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
        return FunctionOutcome(kind="error", reason=reason, history=ctx.history)
    metrics, problem = _metrics(returned, function.metrics)
    if problem:
        return FunctionOutcome(kind="invalid", reason=problem, history=ctx.history)
    if ctx.regularizers:  # what the Regularizer it was given did to the weights
        reg = ctx.regularizers[-1]
        metrics.update(regularization_metrics(reg.model, reg))
    if call.warm_to is not None:  # a path hands these weights on to its next point
        if ctx.warm_model is None:
            reason = "a path needs the model: call ctx.warm_start(model) after building it"
            return FunctionOutcome(kind="invalid", reason=reason, history=ctx.history)
        state = {k: v.detach().cpu() for k, v in ctx.warm_model.state_dict().items()}
        torch.save(state, call.warm_to)
    return FunctionOutcome(kind="done", metrics=metrics, history=ctx.history, device=str(device))


def _metrics(returned: object, declared: tuple[str, ...]) -> tuple[dict[str, float], str]:
    if not isinstance(returned, Mapping):
        return {}, f"it returned {type(returned).__name__}, not a dict of its metrics {declared}"
    metrics: dict[str, float] = {}
    for key, value in returned.items():
        try:
            metrics[str(key)] = float(value)
        except (TypeError, ValueError):
            return {}, f"its metric {key!r} is {value!r}, not a number"
    missing = [m for m in declared if m not in metrics]
    if missing:
        return {}, f"it returned no {', '.join(missing)} (it declares metrics {declared})"
    return metrics, ""
