"""The shared passes: the penalty reaches the step's own gradients also when the optimizer is
stepped with a closure (as Lightning and LBFGS-style loops do), and every pass computes the
same numbers per tensor (CPU) as the formula says."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from regcore.regularizers import METHODS, Regularizer
from regcore.regularizers._ops import add_penalty_grad_, before_update
from tests.regcore.regularizers.helpers import L1, L2, make_data, make_mlp, max_abs_diff, train

OPTIMIZERS = {
    "sgd-momentum": partial(torch.optim.SGD, lr=0.05, momentum=0.9),
    "adam": partial(torch.optim.Adam, lr=1e-2),
}


def train_with_closure(method: str, make_optimizer: partial[torch.optim.Optimizer]) -> nn.Module:
    """As helpers.train, but every step is ``opt.step(closure)`` with zero_grad and backward
    inside the closure, as Lightning's precision plugins run a step."""
    model = make_mlp()
    x, y = make_data()
    l1 = 0.0 if method == "weight_decay" else L1
    reg = Regularizer(model, l1=l1, l2=L2, method=method)
    opt = make_optimizer(reg.param_groups())
    reg.attach(opt)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = reg.penalize(nn.functional.mse_loss(model(x), y))
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    for _ in range(50):
        opt.step(closure)
    return model


@pytest.mark.parametrize("setting", list(OPTIMIZERS))
@pytest.mark.parametrize("method", METHODS)
def test_a_step_with_a_closure_trains_as_a_plain_step(method: str, setting: str) -> None:
    make_optimizer = OPTIMIZERS[setting]
    l1 = 0.0 if method == "weight_decay" else L1
    plain = train(method, make_optimizer, l1=l1)
    closure = train_with_closure(method, make_optimizer)
    assert max_abs_diff(plain, closure) <= 1e-12


def test_before_update_runs_after_the_closure_and_before_the_update() -> None:
    p = nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=1.0)
    seen: list[torch.Tensor | None] = []
    opt.register_step_pre_hook(before_update(lambda: seen.append(p.grad)))

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    assert float(opt.step(closure)) == 5.0  # the closure's loss is handed back
    assert seen[0] is not None
    assert seen[0].tolist() == [2.0, -4.0]  # this step's gradient, made by the closure
    assert p.tolist() == [-1.0, 2.0]  # and the update came after


def test_the_penalty_gradient_pass_is_the_formula_per_tensor() -> None:
    torch.manual_seed(0)
    params = [torch.randn(5, 3, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)]
    grads = [torch.randn_like(p) for p in params]
    expected = [g + 0.3 * torch.sign(p) + 0.7 * p for g, p in zip(grads, params, strict=True)]
    signs = [torch.empty_like(p) for p in params]
    add_penalty_grad_(grads, params, signs, l1=0.3, l2x2=0.7)
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-15, atol=1e-15)
    assert signs[1].tolist() == [0.0] * 4  # sign 0 at 0: the subgradient every method uses
