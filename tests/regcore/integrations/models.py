"""A small float64 problem both trainers and the plain loop train the same way: the same
model, the same batches in the same order, the same optimizer."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from regcore.regularizers import Regularizer
from tests.regcore.regularizers.helpers import make_data, make_mlp

L1 = 1e-2
L2 = 3e-2
N = 32  # samples; batches of BATCH in order, no shuffling
BATCH = 8

OptimizerFactory = Callable[[list[dict[str, Any]]], torch.optim.Optimizer]
OPTIMIZERS: dict[str, OptimizerFactory] = {
    "sgd": lambda groups: torch.optim.SGD(groups, lr=0.05, momentum=0.9),
    "adam": lambda groups: torch.optim.Adam(groups, lr=1e-2),
}


def l1_for(method: str) -> float:
    return 0.0 if method == "weight_decay" else L1


def groups(model: nn.Module) -> list[dict[str, Any]]:
    """Weights and the rest apart, as ``reg.param_groups()`` makes them (so method
    ``weight_decay`` can decay the first group alone)."""
    weights = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return [{"params": weights}, {"params": rest}]


def data() -> tuple[torch.Tensor, torch.Tensor]:
    return make_data(n=N)


def model() -> nn.Module:
    return make_mlp()


def plain_loop(
    method: str,
    optimizer: str,
    *,
    steps: int,
    accumulate: int = 1,
    clip: float | None = None,
    penalty_clipped: bool = False,
) -> nn.Module:
    """What a user's own loop trains: ``steps`` optimizer steps over the batches in order,
    ``accumulate`` batches each; ``clip`` with ``reg.clip_grad_norm_`` (the data gradient
    only) or, ``penalty_clipped``, torch's clip over everything in ``.grad``."""
    net = model()
    x, y = data()
    reg = Regularizer(net, l1=l1_for(method), l2=L2, method=method, accumulation_steps=accumulate)
    opt = OPTIMIZERS[optimizer](groups(net))
    reg.attach(opt)
    batches = [(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, N, BATCH)]
    position = 0
    for _ in range(steps):
        opt.zero_grad()
        for _ in range(accumulate):
            xb, yb = batches[position % len(batches)]
            position += 1
            loss = nn.functional.mse_loss(net(xb), yb) / accumulate
            reg.penalize(loss).backward()  # type: ignore[no-untyped-call]
        if clip is not None:
            if penalty_clipped:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            else:
                reg.clip_grad_norm_(clip)
        opt.step()
    return net


def max_abs_diff(a: nn.Module, b: nn.Module) -> float:
    with torch.no_grad():
        pairs = zip(a.parameters(), b.parameters(), strict=True)
        return max(float((p - q).abs().max()) for p, q in pairs)


def clone(net: nn.Module) -> nn.Module:
    return copy.deepcopy(net)
