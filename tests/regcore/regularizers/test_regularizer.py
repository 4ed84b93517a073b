"""Regularizer: parameter selection, the penalty, detach, accumulation and mixed precision."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from regcore.regularizers import METHODS, Regularizer, l1_norm, l2_norm, sparsity
from tests.regcore.regularizers.helpers import make_data, make_mlp, max_abs_diff


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.fc = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 10)
        self.head.weight = self.embed.weight  # tied
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def names(reg: Regularizer) -> list[str]:
    return [name for name, _ in reg.named_parameters]


def test_default_excludes_biases_norms_and_frozen_and_counts_tied_once() -> None:
    assert names(Regularizer(Net(), l2=1e-3)) == ["embed.weight", "fc.weight"]


def test_exclude_by_name_patterns_replaces_the_default() -> None:
    reg = Regularizer(Net(), l2=1e-3, exclude=["embed.*", "*.bias"])
    assert names(reg) == ["fc.weight", "norm.weight"]


def test_exclude_by_predicate() -> None:
    reg = Regularizer(Net(), l2=1e-3, exclude=lambda name, p: name.startswith("fc."))
    assert names(reg) == ["embed.weight", "norm.weight", "norm.bias", "head.bias"]


@pytest.mark.parametrize("method", METHODS)
def test_param_groups_carry_the_decay_only_for_weight_decay(method: str) -> None:
    net = Net()
    groups = Regularizer(net, l2=0.25, method=method).param_groups(lr=0.5)
    assert [len(g["params"]) for g in groups] == [2, 4]
    assert groups[0]["weight_decay"] == (0.5 if method == "weight_decay" else 0.0)
    assert groups[1]["weight_decay"] == 0.0
    assert all(g["lr"] == 0.5 for g in groups)


def test_penalty_value_and_gradient_follow_the_convention() -> None:
    model = nn.Linear(3, 2).double()
    reg = Regularizer(model, l1=0.3, l2=0.7, method="loss")
    w = model.weight
    expected = 0.3 * w.abs().sum() + 0.7 * w.square().sum()
    penalty = reg.penalty()
    torch.testing.assert_close(penalty, expected, rtol=0, atol=1e-15)
    penalty.backward()
    assert model.bias.grad is None
    torch.testing.assert_close(w.grad, 0.3 * w.detach().sign() + 1.4 * w.detach())


def test_penalty_is_zero_without_regularized_parameters() -> None:
    reg = Regularizer(nn.LayerNorm(3), l1=1.0, l2=1.0)
    assert float(reg.penalty()) == 0.0


def test_metrics_on_known_weights() -> None:
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, -3.0], [4.0, 5e-4]]))
    assert sparsity(model) == 0.25
    assert sparsity(model, tol=1e-3) == 0.5
    assert l1_norm(model) == pytest.approx(7.0005)
    assert l2_norm(model) == pytest.approx((9 + 16 + 25e-8) ** 0.5)
    reg = Regularizer(model, l1=1.0)
    assert (reg.sparsity(), reg.l1_norm(), reg.l2_norm()) == (
        sparsity(model),
        l1_norm(model),
        l2_norm(model),
    )
    with pytest.raises(ValueError, match="tol must be >= 0"):
        sparsity(model, tol=-1.0)


def test_penalize_before_attach_is_refused_for_optimizer_methods() -> None:
    reg = Regularizer(nn.Linear(2, 2), l2=1e-3, method="fused")
    with pytest.raises(RuntimeError, match=r"call reg.attach\(optimizer\) before training"):
        reg.penalize(torch.zeros(()))


def run(
    model: nn.Module, opt: torch.optim.Optimizer, steps: int, reg: Regularizer | None = None
) -> None:
    x, y = make_data()
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        (reg.penalize(loss) if reg else loss).backward()
        opt.step()


def optimizer_for(method: str, groups: list[dict[str, object]]) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=0.05, momentum=0.9)


@pytest.mark.parametrize("method", METHODS)
def test_detach_leaves_an_unregularized_pair(method: str) -> None:
    model = make_mlp()
    reg = Regularizer(model, l1=0.0 if method == "weight_decay" else 1e-2, l2=1e-2, method=method)
    opt = optimizer_for(method, reg.param_groups())
    reg.attach(opt)
    run(model, opt, 5, reg)
    reg.detach()

    twin = copy.deepcopy(model)
    twin_opt = optimizer_for(method, [{"params": ps} for ps in _split(twin)])
    twin_opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # else they share buffers
    assert all(g["weight_decay"] == 0.0 for g in twin_opt.param_groups)
    run(model, opt, 5)
    run(twin, twin_opt, 5)
    assert max_abs_diff(model, twin) == 0.0
    assert not opt._optimizer_step_pre_hooks
    assert not opt._optimizer_step_post_hooks


def _split(model: nn.Module) -> list[list[nn.Parameter]]:
    params = list(model.parameters())
    return [[p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]]


@pytest.mark.parametrize("method", METHODS)
def test_accumulation_applies_lambda_once_per_step(method: str) -> None:
    """k micro-batches of loss/k with accumulation_steps=k equal one full-batch step."""
    k, l1 = 4, (0.0 if method == "weight_decay" else 1e-2)
    x, y = make_data(n=32)

    def train(micro_steps: int) -> nn.Module:
        model = make_mlp()
        reg = Regularizer(model, l1=l1, l2=1e-2, method=method, accumulation_steps=micro_steps)
        opt = torch.optim.Adam(reg.param_groups(), lr=1e-2)
        reg.attach(opt)
        for _ in range(10):
            opt.zero_grad()
            for xb, yb in zip(x.chunk(micro_steps), y.chunk(micro_steps), strict=True):
                loss = nn.functional.mse_loss(model(xb), yb) / micro_steps
                reg.penalize(loss).backward()
            opt.step()
        return model

    assert max_abs_diff(train(k), train(1)) <= 1e-12


@pytest.mark.parametrize("method", [m for m in METHODS if m != "hook"])
def test_grad_scaler_gives_the_unscaled_result(method: str) -> None:
    """Loss scaling by a power of two is exact, so the regularized result must not change."""
    l1 = 0.0 if method == "weight_decay" else 1e-2

    def train(scaler: torch.amp.GradScaler | None) -> nn.Module:
        model = make_mlp()
        x, y = make_data()
        reg = Regularizer(model, l1=l1, l2=1e-2, method=method)
        opt = torch.optim.Adam(reg.param_groups(), lr=1e-2)
        reg.attach(opt, scaler=scaler)
        for _ in range(10):
            opt.zero_grad()
            loss = reg.penalize(nn.functional.mse_loss(model(x), y))
            if scaler is None:
                loss.backward()
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
        return model

    scaled = train(torch.amp.GradScaler("cpu", init_scale=2.0**12))
    assert max_abs_diff(scaled, train(None)) <= 1e-12
