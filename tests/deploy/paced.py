"""A training function whose pace the test sets from outside: the SLURM test's workers load it
through REGSWEEP_PLUGINS, and a job's environment decides how long each epoch sleeps.

``REGSWEEP_TEST_EPOCH_S`` (seconds per epoch, default 0) lets one job's trials outlast its time
limit while a later job, given 0, runs the same (requeued) parameters to the end in a moment.
"""

from __future__ import annotations

import os
import time

import torch

from regcore.workloads import TrialContext, training_function

EPOCH_S_VARIABLE = "REGSWEEP_TEST_EPOCH_S"


@training_function(name="deploy_paced", metrics=("val_loss",))
def paced(ctx: TrialContext) -> dict[str, float]:
    epoch_s = float(os.environ.get(EPOCH_S_VARIABLE, "0"))
    generator = torch.Generator().manual_seed(ctx.seed)
    x = torch.randn(128, 8, generator=generator)
    y = x[:, :2].sum(dim=1, keepdim=True)
    model = torch.nn.Linear(8, 1)
    reg = ctx.regularizer(model)
    optimizer = torch.optim.SGD(reg.param_groups(), lr=ctx.lr)
    reg.attach(optimizer)
    val_loss = float("nan")
    for epoch in range(ctx.epochs):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[:64]), y[:64])
        reg.penalize(loss).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        with torch.no_grad():
            val_loss = float(torch.nn.functional.mse_loss(model(x[64:]), y[64:]))
        time.sleep(epoch_s)
        ctx.report(epoch, {"val_loss": val_loss})  # raises once the worker stops the trial
    return {"val_loss": val_loss}
