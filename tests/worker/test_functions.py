"""Training functions in their child process: every way a function can end is a trial
outcome with its reason, and the child is reused while it lives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regcore.worker.function_process import FunctionCall, Verdict
from regcore.worker.functions import FunctionRunner
from tests.waiting import wait_until
from tests.worker.function_calls import call, go

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runner() -> Iterator[FunctionRunner]:
    r = FunctionRunner(threads=1)
    yield r
    r.close(kill=True)


def run(runner: FunctionRunner, c: FunctionCall, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"on_report": go, "should_stop": lambda: False, "grace_s": 5.0}
    return runner.run(c, **{**options, **kwargs})


def test_a_function_reports_every_epoch_and_returns_its_metrics(runner: FunctionRunner) -> None:
    reports: list[tuple[int, dict[str, float]]] = []

    def on_report(epoch: int, metrics: dict[str, float]) -> Verdict:
        reports.append((epoch, metrics))
        return "go"

    outcome = run(runner, call(width=3), on_report=on_report)
    assert outcome.kind == "done", outcome.reason
    assert [epoch for epoch, _ in reports] == [0, 1, 2, 3]
    assert outcome.metrics["width_seen"] == 3.0  # the params reached the function
    for key in ("sparsity", "sparsity_1e-3", "l1_norm", "l2_norm"):  # of ctx.regularizer's model
        assert key in outcome.metrics
    assert [h["epoch"] for h in outcome.history] == [0.0, 1.0, 2.0, 3.0]
    assert outcome.device == "cpu"


def test_the_child_is_reused_from_trial_to_trial(runner: FunctionRunner) -> None:
    run(runner, call())
    pid = runner._process.pid
    started = time.monotonic()
    assert run(runner, call(number=1)).kind == "done"
    assert runner._process.pid == pid
    assert time.monotonic() - started < 2.0  # no new interpreter, no new import of torch


def test_a_prune_answer_ends_the_trial_as_pruned(runner: FunctionRunner) -> None:
    outcome = run(runner, call(), on_report=lambda e, m: "prune" if e == 1 else "go")
    assert (outcome.kind, outcome.reason) == ("pruned", "pruned after epoch 2")
    assert len(outcome.history) == 2


def test_a_function_that_catches_the_stop_still_ends_as_told(runner: FunctionRunner) -> None:
    outcome = run(
        runner, call("test_misbehaving", do="catch_the_stop"), on_report=lambda e, m: "prune"
    )
    assert outcome.kind == "pruned"


@pytest.mark.parametrize(
    ("do", "kind", "reason"),
    [
        ("raise", "error", "RuntimeError: the data file is corrupt (at functions.py:"),
        ("oom", "out_of_memory", "CUDA out of memory. Tried to allocate 20.00 GiB"),
        ("return_nothing", "invalid", "it returned NoneType, not a dict of its metrics"),
        ("return_text", "invalid", "its metric 'val_loss' is 'low', not a number"),
        ("forget_metric", "invalid", "it returned no val_loss (it declares metrics"),
    ],
)
def test_a_failing_function_fails_with_its_reason(
    runner: FunctionRunner, do: str, kind: str, reason: str
) -> None:
    outcome = run(runner, call("test_misbehaving", do=do))
    assert outcome.kind == kind
    assert outcome.reason.startswith(reason), outcome.reason
    assert runner._process.is_alive()  # a raised error leaves the child as it was


def test_params_the_functions_model_refuses_are_invalid(runner: FunctionRunner) -> None:
    outcome = run(runner, call(width=0))
    assert outcome.kind == "invalid"
    assert "width" in outcome.reason


def test_a_function_that_kills_its_process_fails_only_its_trial(runner: FunctionRunner) -> None:
    outcome = run(runner, call(number=7, exit_on_trial=7))
    assert (outcome.kind, outcome.reason) == (
        "died",
        "the training function's process exited with code 3",
    )
    assert run(runner, call(number=8, exit_on_trial=7)).kind == "done"  # a fresh child


def test_a_function_that_ignores_a_stop_is_terminated_after_the_grace(
    runner: FunctionRunner,
) -> None:
    asked = time.monotonic() + 1.0
    started = time.monotonic()
    outcome = run(
        runner,
        call(ignore_stop=True),
        should_stop=lambda: time.monotonic() > asked,
        grace_s=1.0,
    )
    assert outcome.kind == "interrupted"
    assert outcome.reason == "stopped: it did not stop within 1 s and was terminated"
    assert time.monotonic() - started < 10
    assert run(runner, call()).kind == "done"


def test_a_stop_reaches_the_function_at_its_next_report(runner: FunctionRunner) -> None:
    asked = time.monotonic() + 0.5
    outcome = run(
        runner,
        call(seconds_per_epoch=0.3, epochs=50),
        should_stop=lambda: time.monotonic() > asked,
        grace_s=30.0,
    )
    assert outcome.kind == "interrupted"
    assert outcome.reason.startswith("stopped: its sweep ended")
    assert len(outcome.history) < 10


def test_the_child_exits_when_its_worker_is_killed(tmp_path: Path) -> None:
    """kill -9 of the worker: no training function goes on alone."""
    pid_file = tmp_path / "child.pid"
    script = (
        "import sys\n"
        "from tests.worker.function_calls import call, go\n"
        "from regcore.worker.functions import FunctionRunner\n"
        "runner = FunctionRunner(threads=1)\n"
        "def report(epoch, metrics):\n"
        f"    open({str(pid_file)!r}, 'w').write(str(runner._process.pid))\n"
        "    return 'go'\n"
        "runner.run(call(seconds_per_epoch=0.5, epochs=500), on_report=report,\n"
        "           should_stop=lambda: False, grace_s=60)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        wait_until(pid_file.exists, 60, "the function's first report")
        child = int(pid_file.read_text())
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()

        def gone() -> bool:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return True
            return False

        wait_until(gone, 10, "the child to exit after its worker")
    finally:
        if worker.poll() is None:
            worker.kill()
