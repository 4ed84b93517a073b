"""What the training-function tests send the child process: calls of the test plug-ins, and
a verdict that lets them run."""

from __future__ import annotations

from typing import Any

from regcore.worker.function_process import FunctionCall, Verdict

PLUGINS = ("tests.plugins.functions",)


def call(
    workload: str = "test_linear", number: int = 0, epochs: int = 4, **params: Any
) -> FunctionCall:
    return FunctionCall(
        workload=workload,
        plugins=PLUGINS,
        l1=1e-3,
        l2=1e-3,
        method="proximal",
        lr=0.05,
        epochs=epochs,
        seed=0,
        device="cpu",
        params=params,
        data_dir=None,
        number=number,
    )


def go(_epoch: int, _metrics: dict[str, float]) -> Verdict:
    return "go"
