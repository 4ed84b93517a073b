"""Small float64 models, data and a training loop that make method comparisons exact."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from regcore.regularizers import Regularizer

L1 = 1e-2
L2 = 3e-2


def make_mlp(device: torch.device | str = "cpu", seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double().to(device)


def make_data(device: torch.device | str = "cpu", n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 6, generator=g, dtype=torch.float64)
    y = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return x.to(device), y.to(device)


OptimizerFactory = Callable[[list[dict[str, object]]], torch.optim.Optimizer]


def train(
    method: str | None,
    make_optimizer: OptimizerFactory,
    *,
    l1: float = L1,
    l2: float = L2,
    steps: int = 50,
    device: torch.device | str = "cpu",
    model: nn.Module | None = None,
) -> nn.Module:
    """Full-batch training with mse; ``method=None`` trains unregularized."""
    model = make_mlp(device) if model is None else model
    x, y = make_data(device)
    if method is None:
        opt = make_optimizer([{"params": list(model.parameters())}])
        reg = None
    else:
        reg = Regularizer(model, l1=l1, l2=l2, method=method)
        opt = make_optimizer(reg.param_groups())
        reg.attach(opt)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        if reg is not None:
            loss = reg.penalize(loss)
        loss.backward()
        opt.step()
    return model


def max_abs_diff(a: nn.Module, b: nn.Module) -> float:
    with torch.no_grad():
        pairs = zip(a.parameters(), b.parameters(), strict=True)
        return max(float((p - q).abs().max()) for p, q in pairs)


def clone(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)
