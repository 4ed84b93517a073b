"""Workloads for the tests that report, as metrics, what the process that trained the trial
ran with: torch's thread count (a worker's own, for a workload whose loop regsweep owns; the
child's, for a training function), and which heavy modules it had loaded.

``test_threads_cnn`` is digits_cnn (its convolutions sum in an order that depends on the
thread count, so the same trial gives a different value with 1 and 2 threads) with those
metrics added, ``test_facts_mlp`` the built-in digits MLP with them; ``test_threads_function``
is a training function that reports them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from regcore.workloads import (
    DigitsCNNWorkload,
    DigitsMLPWorkload,
    TrialContext,
    register_workload,
    training_function,
)

#: Modules a worker loads only when a trial needs them (docs/workers.md, "Memory").
LAZY = ("sklearn", "scipy", "pandas", "torch._dynamo")


def process_facts() -> dict[str, float]:
    """This process's torch threads, peak resident set (MiB) and which LAZY modules it has
    loaded (1.0 each that is)."""
    facts = {"torch_threads": float(torch.get_num_threads())}
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                facts["peak_rss_mib"] = int(line.split()[1]) / 1024
    for name in LAZY:
        facts[f"loaded:{name}"] = float(name in sys.modules)
    return facts


@register_workload
class ThreadsCNNWorkload(DigitsCNNWorkload):
    """digits_cnn, and the process facts of whoever evaluated it."""

    name = "test_threads_cnn"
    metrics = (*DigitsCNNWorkload.metrics, "torch_threads")

    @torch.no_grad()
    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {**super().evaluate(model, x, y), **process_facts()}


@register_workload
class FactsMLPWorkload(DigitsMLPWorkload):
    """digits_mlp, and the process facts of whoever evaluated it."""

    name = "test_facts_mlp"
    metrics = (*DigitsMLPWorkload.metrics, "torch_threads")

    @torch.no_grad()
    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {**super().evaluate(model, x, y), **process_facts()}


@training_function(name="test_threads_function", metrics=("val_loss", "torch_threads"))
def threads_function(ctx: TrialContext) -> dict[str, float]:
    model = nn.Linear(4, 1).to(ctx.device)
    ctx.regularizer(model)
    value = 1.0 + ctx.l1
    for epoch in range(ctx.epochs):
        ctx.report(epoch, {"val_loss": value})
    return {"val_loss": value, **process_facts()}
