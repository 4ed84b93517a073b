"""Bad input is refused at once, with a message that names the problem and the fix."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from regcore.regularizers import L1_METHODS, METHODS, Regularizer


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"l1": -1e-4}, r"l1 must be a finite number >= 0, but got l1=-0.0001"),
        ({"l2": -1.0}, r"l2 must be a finite number >= 0"),
        ({"l1": math.nan}, r"l1 must be a finite number >= 0, but got l1=nan"),
        ({"l2": math.inf}, r"l2 must be a finite number >= 0, but got l2=inf"),
        ({"method": "l1"}, r"unknown method 'l1'; choose one of weight_decay, decoupled"),
        ({"l1": 1e-4, "method": "weight_decay"}, r"use one of decoupled, loss, hook, fused, prox"),
        ({"accumulation_steps": 0}, r"accumulation_steps must be >= 1"),
    ],
)
def test_bad_arguments_name_the_fix(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Regularizer(model(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"l1": "1e-4"}, r"l1 must be a number, but got '1e-4'"),
        ({"exclude": "*.bias"}, r"write exclude=\['\*.bias'\]"),
        ({"accumulation_steps": 2.0}, r"accumulation_steps must be an int"),
    ],
)
def test_wrong_types_name_the_fix(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        Regularizer(model(), **kwargs)  # type: ignore[arg-type]


def test_model_must_be_a_module() -> None:
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Module"):
        Regularizer([torch.zeros(2, 2)], l2=1e-3)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", [m for m in METHODS if m != "weight_decay"])
def test_optimizer_weight_decay_would_regularize_twice(method: str) -> None:
    m = model()
    reg = Regularizer(m, l2=1e-3, method=method)
    # AdamW's default weight_decay is 0.01: built from m.parameters(), it decays on its own.
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    with pytest.raises(ValueError, match=r"weight_decay=0.01.*regularized twice.*param_groups"):
        reg.attach(opt)


def _expected_decay(method: str, l2: float) -> list[float]:
    """The weight_decay of each reg.param_groups() group: regularized first, then excluded."""
    return [2 * l2 if method == "weight_decay" else 0.0, 0.0]


@pytest.mark.parametrize("method", METHODS)
def test_param_groups_set_the_decay_each_method_needs(method: str) -> None:
    l2 = 1e-3
    reg = Regularizer(model(), l2=l2, method=method)
    groups = reg.param_groups()
    # Explicit in every group, so no optimizer's own default can apply.
    assert [g["weight_decay"] for g in groups] == _expected_decay(method, l2)
    # AdamW's default weight_decay is 0.01; Adam for the method that is coupled decay.
    optimizer = (torch.optim.Adam if method == "weight_decay" else torch.optim.AdamW)(
        groups, lr=1e-3
    )
    reg.attach(optimizer)
    assert [g["weight_decay"] for g in optimizer.param_groups] == _expected_decay(method, l2)


def _once(method: str, p: torch.Tensor, *, lr: float, l1: float, l2: float) -> torch.Tensor:
    """``p`` after one SGD step with a zero data gradient: the penalty applied exactly once."""
    if method == "proximal":
        return torch.sign(p) * (p.abs() - lr * l1).clamp(min=0) / (1 + 2 * lr * l2)
    return p - lr * (l1 * torch.sign(p) + 2 * l2 * p)


@pytest.mark.parametrize("method", METHODS)
def test_param_groups_never_regularize_twice(method: str) -> None:
    lr, l2 = 0.1, 0.05
    l1 = 0.02 if method in L1_METHODS else 0.0
    m = model().double()
    before = {name: p.detach().clone() for name, p in m.named_parameters()}
    reg = Regularizer(m, l1=l1, l2=l2, method=method)
    # SGD, whose step shows a doubled penalty (Adam's normalization would hide it); its
    # default decay 0.3 must not reach any group, as AdamW's 0.01 must not.
    optimizer = torch.optim.SGD(reg.param_groups(), lr=lr, weight_decay=0.3)
    reg.attach(optimizer)
    assert [g["weight_decay"] for g in optimizer.param_groups] == _expected_decay(method, l2)
    x = torch.randn(8, 4, dtype=torch.float64)
    reg.penalize(m(x).sum() * 0.0).backward()  # every gradient exists and is 0
    optimizer.step()
    regularized = {name for name, _ in reg.named_parameters}
    assert regularized == {"0.weight", "2.weight"}
    for name, p in m.named_parameters():
        want = (
            _once(method, before[name], lr=lr, l1=l1, l2=l2)
            if name in regularized
            else before[name]
        )
        torch.testing.assert_close(p.detach(), want, rtol=1e-12, atol=1e-15)


def test_attach_twice_is_refused() -> None:
    reg = Regularizer(model(), l2=1e-3, method="fused")
    opt = torch.optim.SGD(reg.param_groups(), lr=0.1)
    reg.attach(opt)
    with pytest.raises(RuntimeError, match=r"already attached.*reg.detach\(\)"):
        reg.attach(opt)
    reg.detach()
    reg.attach(opt)  # after detach it may be attached again


def test_optimizer_of_another_model_is_refused() -> None:
    reg = Regularizer(model(), l2=1e-3, method="fused")
    other = torch.optim.SGD(model().parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"not parameters of the model"):
        reg.attach(other)


def test_weight_decay_needs_groups_it_can_decay_whole() -> None:
    m = model()
    reg = Regularizer(m, l2=1e-3, method="weight_decay")
    with pytest.raises(ValueError, match=r"mixes regularized and excluded.*param_groups\(\)"):
        reg.attach(torch.optim.SGD(m.parameters(), lr=0.1))


def test_weight_decay_refuses_decoupled_optimizers() -> None:
    reg = Regularizer(model(), l2=1e-3, method="weight_decay")
    with pytest.raises(ValueError, match=r"AdamW decays decoupled.*method='decoupled'"):
        reg.attach(torch.optim.AdamW(reg.param_groups(), lr=1e-3))


def test_proximal_refuses_optimizers_without_a_known_step() -> None:
    reg = Regularizer(model(), l1=1e-3, method="proximal")
    with pytest.raises(ValueError, match=r"SGD, Adam, AdamW and RMSprop, but got Adagrad"):
        reg.attach(torch.optim.Adagrad(reg.param_groups(), lr=1e-3))


def test_hook_refuses_an_enabled_grad_scaler() -> None:
    reg = Regularizer(model(), l1=1e-3, method="hook")
    opt = torch.optim.SGD(reg.param_groups(), lr=0.1)
    with pytest.raises(ValueError, match=r"still scaled; use method='fused'"):
        reg.attach(opt, scaler=torch.amp.GradScaler("cpu"))
    reg.attach(opt, scaler=torch.amp.GradScaler("cpu", enabled=False))


def test_attach_wants_an_optimizer() -> None:
    reg = Regularizer(model(), l2=1e-3)
    with pytest.raises(TypeError, match=r"attach expects a torch\.optim\.Optimizer"):
        reg.attach(reg.param_groups())  # type: ignore[arg-type]
