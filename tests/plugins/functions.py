"""Training functions for the tests: one that trains, and ones that misbehave on purpose.

Each trains a linear model on a fixed synthetic regression, so a trial takes a fraction of a
second per epoch on one CPU thread.
"""

from __future__ import annotations

import contextlib
import math
import os
import time

import torch
from pydantic import BaseModel, ConfigDict, Field

from regcore.workloads import TrialContext, training_function


class LinearParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_samples: int = Field(default=256, ge=16)
    n_features: int = Field(default=20, ge=1)
    width: int = Field(default=1, ge=1, description="hidden width; 1 = linear")
    seconds_per_epoch: float = Field(default=0.0, ge=0, description="sleep per epoch")
    exit_on_trial: int | None = Field(default=None, description="os._exit(3) in this trial")
    ignore_stop: bool = False
    nan_in_epoch: int | None = Field(default=None, description="report val_loss NaN then")


def _data(params: LinearParams, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(params.n_samples, params.n_features, generator=generator)
    y = x[:, :3].sum(dim=1, keepdim=True) + 0.1 * torch.randn(
        params.n_samples, 1, generator=generator
    )
    return x.to(device), y.to(device)


@training_function(
    name="test_linear",
    metrics=("val_loss", "train_loss", "width_seen"),
    params=LinearParams,
)
def linear(ctx: TrialContext) -> dict[str, float]:
    params = LinearParams(**ctx.params)
    if params.exit_on_trial == ctx.number:
        os._exit(3)  # what a crash in an extension looks like to the worker
    x, y = _data(params, ctx.device)
    half = params.n_samples // 2
    layers: list[torch.nn.Module] = [torch.nn.Linear(params.n_features, params.width)]
    if params.width > 1:
        layers += [torch.nn.ReLU(), torch.nn.Linear(params.width, 1)]
    model = torch.nn.Sequential(*layers).to(ctx.device)
    reg = ctx.regularizer(model)
    optimizer = torch.optim.AdamW(reg.param_groups(), lr=ctx.lr)
    reg.attach(optimizer)
    train_loss = val_loss = float("nan")
    for epoch in range(ctx.epochs):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[:half]), y[:half])
        reg.penalize(loss).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        with torch.no_grad():
            val_loss = float(torch.nn.functional.mse_loss(model(x[half:]), y[half:]))
        train_loss = float(loss.detach())
        time.sleep(params.seconds_per_epoch)
        metrics = {"val_loss": val_loss, "train_loss": train_loss}
        if params.nan_in_epoch == epoch + 1:  # a broken metric; what it returns is fine
            metrics["val_loss"] = float("nan")
        if params.ignore_stop:
            while True:  # never reports, never asks should_stop
                time.sleep(0.1)
        ctx.report(epoch, metrics)
    return {"val_loss": val_loss, "train_loss": train_loss, "width_seen": float(params.width)}


@training_function(name="test_misbehaving", metrics=("val_loss",))
def misbehaving(ctx: TrialContext) -> dict[str, float]:
    """Does what ``ctx.params["do"]`` says: raise, run out of memory, return a bad result,
    or finish without a Regularizer."""
    what = ctx.params["do"]
    if what == "raise":
        raise RuntimeError("the data file is corrupt")
    if what == "oom":
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    if what == "return_nothing":
        return None  # type: ignore[return-value]
    if what == "return_text":
        return {"val_loss": "low"}  # type: ignore[dict-item]
    if what == "forget_metric":
        return {"loss": 0.1}
    if what == "catch_the_stop":
        for epoch in range(ctx.epochs):
            # Wrong, but the worker still decides how the trial ends.
            with contextlib.suppress(Exception):
                ctx.report(epoch, {"val_loss": 1.0})
        return {"val_loss": 0.5}
    return {"val_loss": 0.25}


class PairedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gain: float = Field(default=0.03, description="what λ₂ ≥ 1e-3 gains, on every seed")
    spread: float = Field(default=0.1, description="seed-to-seed sd of the value")
    split_seed: int = Field(default=0, ge=0)


@training_function(
    name="test_paired", metrics=("val_loss",), params=PairedParams, split_param="split_seed"
)
def paired(ctx: TrialContext) -> dict[str, float]:
    """A deterministic workload whose value moves a lot from seed to seed (and split to
    split) while λ₂ ≥ 1e-3 gains the same small amount on every one of them."""
    params = PairedParams(**ctx.params)
    generator = torch.Generator().manual_seed(ctx.seed * 1_000 + params.split_seed)
    base = 0.5 + params.spread * float(torch.randn((), generator=generator))
    value = base - (params.gain if ctx.l2 >= 1e-3 else 0.0)
    for epoch in range(ctx.epochs):
        ctx.report(epoch, {"val_loss": value})
    return {"val_loss": value}


class FragileParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overfit_below: float = Field(
        default=0.0, description="warm-started, a λ₂ below this keeps overfitting (worse)"
    )


@training_function(
    name="test_fragile", metrics=("val_loss",), params=FragileParams, warm_start=True
)
def fragile(ctx: TrialContext) -> dict[str, float]:
    """A network a large λ kills from scratch but not from trained weights: from scratch,
    λ₂ ≥ 1e-2 gives ln 3 (every output equal) and λ₂ = 1e-3 is best (0.40); warm-started,
    every λ₂ from ``overfit_below`` up helps and the largest most (below it, values rise
    above the baseline's, as an overfit network's do). The λ = 0 baseline reaches 0.50."""
    params = FragileParams(**ctx.params)
    model = ctx.warm_start(torch.nn.Linear(4, 3).to(ctx.device))
    warm = ctx.warm_from is not None
    if ctx.l2 == 0:
        value = 0.5
    elif warm and ctx.l2 < params.overfit_below:
        value = 0.55 + 0.01 * math.log10(ctx.l2 / 1e-6)
    elif warm:
        value = 0.45 - 0.02 * math.log10(ctx.l2 / 1e-6)
    elif ctx.l2 >= 1e-2:
        value = math.log(3)
    else:
        value = 0.40 + 0.02 * abs(math.log10(ctx.l2 / 1e-3))
    with torch.no_grad():
        model.weight.mul_(0.5)  # it trains: the weights it hands on differ from its start
    for epoch in range(ctx.epochs):
        ctx.report(epoch, {"val_loss": value})
    return {"val_loss": value}
