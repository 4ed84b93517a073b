"""Regularizer.clip_grad_norm_ clips the data gradient and never the penalty's gradient.

So every method stays the same regularizer under clipping: ``loss`` and ``hook`` (whose
penalty is in ``.grad`` after backward) give what ``fused`` gives with the penalty added after
the clip, and what the optimizer's own coupled decay gives (``weight_decay``, λ₁ = 0).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from regcore.regularizers import METHODS, Regularizer
from tests.regcore.regularizers.helpers import (
    L1,
    L2,
    OptimizerFactory,
    make_data,
    make_mlp,
    max_abs_diff,
)

PER_BACKWARD = ["loss", "hook"]
# Far below the data gradient norms of these runs (at least 6x it, Adam with λ₁ > 0 the least):
# every step clips.
MAX_NORM = 0.003


def sgd_momentum(groups: list[dict[str, object]]) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=0.05, momentum=0.9)


def sgd(groups: list[dict[str, object]]) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=0.05)


def adam(groups: list[dict[str, object]]) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=1e-2)


OPTIMIZERS: dict[str, OptimizerFactory] = {"sgd_momentum": sgd_momentum, "adam": adam}


def train_clipped(
    method: str,
    make_optimizer: OptimizerFactory,
    *,
    l1: float = L1,
    l2: float = L2,
    steps: int = 50,
    micro_batches: int = 1,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> tuple[nn.Module, list[float]]:
    """Full-batch training (or ``micro_batches`` accumulated), clipped to MAX_NORM."""
    model = make_mlp(device).to(dtype)
    x, y = make_data(device)
    x, y = x.to(dtype), y.to(dtype)
    reg = Regularizer(model, l1=l1, l2=l2, method=method, accumulation_steps=micro_batches)
    opt = make_optimizer(reg.param_groups())
    reg.attach(opt)
    norms = []
    for _ in range(steps):
        opt.zero_grad()
        for xb, yb in zip(x.chunk(micro_batches), y.chunk(micro_batches), strict=True):
            loss = nn.functional.mse_loss(model(xb), yb) / micro_batches
            reg.penalize(loss).backward()
        norms.append(float(reg.clip_grad_norm_(MAX_NORM)))
        opt.step()
    return model, norms


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("method", PER_BACKWARD)
def test_loss_and_hook_agree_with_fused_under_active_clipping(
    method: str, optimizer: str, device: torch.device
) -> None:
    reference, norms = train_clipped("fused", OPTIMIZERS[optimizer], device=device)
    assert min(norms) > 2 * MAX_NORM  # clipping acted at every step
    model, _ = train_clipped(method, OPTIMIZERS[optimizer], device=device)
    assert max_abs_diff(model, reference) <= 1e-10


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("method", ["weight_decay", *PER_BACKWARD])
def test_coupled_weight_decay_agrees_under_clipping_without_l1(
    method: str, optimizer: str, device: torch.device
) -> None:
    reference, _ = train_clipped("fused", OPTIMIZERS[optimizer], l1=0.0, device=device)
    model, _ = train_clipped(method, OPTIMIZERS[optimizer], l1=0.0, device=device)
    assert max_abs_diff(model, reference) <= 1e-10


@pytest.mark.parametrize("method", ["decoupled", *PER_BACKWARD])
def test_plain_sgd_agrees_under_clipping_for_every_l1_method(
    method: str, device: torch.device
) -> None:
    reference, _ = train_clipped("fused", sgd, device=device)
    model, _ = train_clipped(method, sgd, device=device)
    assert max_abs_diff(model, reference) <= 1e-10


def test_clipping_changes_the_result(device: torch.device) -> None:
    # Guards the agreement tests against comparing runs the clip never touched.
    clipped, _ = train_clipped("loss", adam, device=device)
    model = make_mlp(device)
    x, y = make_data(device)
    reg = Regularizer(model, l1=L1, l2=L2, method="loss")
    opt = adam(reg.param_groups())
    reg.attach(opt)
    for _ in range(50):
        opt.zero_grad()
        reg.penalize(nn.functional.mse_loss(model(x), y)).backward()
        opt.step()
    assert max_abs_diff(clipped, model) > 1e-3


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("method", ["fused", "weight_decay", *PER_BACKWARD])
def test_accumulated_micro_steps_agree_with_one_full_batch_under_clipping(
    method: str, optimizer: str, device: torch.device
) -> None:
    """With k micro-steps the penalty in .grad totals one penalty gradient, removed once."""
    l1 = 0.0 if method == "weight_decay" else L1
    reference, _ = train_clipped("fused", OPTIMIZERS[optimizer], l1=l1, device=device)
    model, norms = train_clipped(
        method, OPTIMIZERS[optimizer], l1=l1, micro_batches=4, device=device
    )
    assert min(norms) > 2 * MAX_NORM
    assert max_abs_diff(model, reference) <= 1e-10


def twin_with_grads(model: nn.Module) -> nn.Module:
    """A copy of ``model`` holding copies of its gradients (deepcopy leaves .grad behind)."""
    twin = copy.deepcopy(model)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        q.grad = None if p.grad is None else p.grad.clone()
    return twin


def backward_once(
    method: str, *, l1: float, l2: float, device: torch.device, dtype: torch.dtype
) -> tuple[nn.Module, Regularizer]:
    """A model after one regularized backward, its Regularizer attached to SGD."""
    model = make_mlp(device).to(dtype)
    x, y = make_data(device)
    reg = Regularizer(model, l1=l1, l2=l2, method=method)
    reg.attach(sgd(reg.param_groups()))
    reg.penalize(nn.functional.mse_loss(model(x.to(dtype)), y.to(dtype))).backward()
    return model, reg


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("max_norm", [MAX_NORM, math.inf])
@pytest.mark.parametrize("method", METHODS)
def test_without_penalty_it_is_torch_clip_grad_norm_exactly(
    method: str, max_norm: float, dtype: torch.dtype, device: torch.device
) -> None:
    model, reg = backward_once(method, l1=0.0, l2=0.0, device=device, dtype=dtype)
    twin = twin_with_grads(model)

    norm = reg.clip_grad_norm_(max_norm)
    expected = torch.nn.utils.clip_grad_norm_(twin.parameters(), max_norm)

    assert torch.equal(norm, expected)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert p.grad is not None
        assert q.grad is not None
        assert torch.equal(p.grad, q.grad)


def data_gradients(model: nn.Module, dtype: torch.dtype) -> list[torch.Tensor]:
    """The gradient of the data loss alone, at the model's current weights."""
    twin = copy.deepcopy(model)
    twin.zero_grad(set_to_none=True)
    x, y = make_data(next(model.parameters()).device)
    nn.functional.mse_loss(twin(x.to(dtype)), y.to(dtype)).backward()
    return [p.grad.clone() for p in twin.parameters() if p.grad is not None]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", METHODS)
def test_returns_the_data_gradient_norm_and_adds_the_penalty_unclipped(
    method: str, dtype: torch.dtype, device: torch.device
) -> None:
    l1 = 0.0 if method == "weight_decay" else L1
    model, reg = backward_once(method, l1=l1, l2=L2, device=device, dtype=dtype)
    data = data_gradients(model, dtype)
    data_norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in data]))

    norm = reg.clip_grad_norm_(MAX_NORM, 2.0)

    tol = {"rtol": 1e-12, "atol": 1e-15} if dtype == torch.float64 else {}
    torch.testing.assert_close(norm, data_norm, **tol)
    c = MAX_NORM / (float(data_norm) + 1e-6)
    assert c < 0.5
    regularized = {id(p) for p in reg.parameters}
    for p, d in zip(model.parameters(), data, strict=True):
        want = c * d
        if id(p) in regularized and method in PER_BACKWARD:
            # Step-time methods add the penalty gradient later, in step().
            want = want + l1 * p.detach().sign() + 2 * L2 * p.detach()
        assert p.grad is not None
        torch.testing.assert_close(p.grad, want, **tol)


@pytest.mark.parametrize("method", PER_BACKWARD)
def test_gradients_below_max_norm_keep_their_penalty(method: str, device: torch.device) -> None:
    model, reg = backward_once(method, l1=L1, l2=L2, device=device, dtype=torch.float64)
    before = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    reg.clip_grad_norm_(1e3)
    after = [p.grad for p in model.parameters() if p.grad is not None]
    for g, h in zip(after, before, strict=True):
        torch.testing.assert_close(g, h, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("method", PER_BACKWARD)
def test_float32_loss_and_hook_agree_with_fused_under_clipping(
    method: str, device: torch.device
) -> None:
    reference, _ = train_clipped(
        "fused", sgd_momentum, steps=20, device=device, dtype=torch.float32
    )
    model, _ = train_clipped(method, sgd_momentum, steps=20, device=device, dtype=torch.float32)
    assert max_abs_diff(model, reference) <= 1e-5


def test_hook_not_attached_clips_like_torch(device: torch.device) -> None:
    """Without attach the hooks put no penalty into .grad, so there is none to take out."""
    model = make_mlp(device)
    x, y = make_data(device)
    reg = Regularizer(model, l1=L1, l2=L2, method="hook")
    nn.functional.mse_loss(model(x), y).backward()
    twin = twin_with_grads(model)
    assert torch.equal(
        reg.clip_grad_norm_(MAX_NORM), torch.nn.utils.clip_grad_norm_(twin.parameters(), MAX_NORM)
    )
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["loss", "fused"])
def test_grad_scaler_unscale_then_clip_gives_the_unscaled_result(
    method: str, device: torch.device
) -> None:
    """Loss scaling by a power of two is exact, so clipping after unscale_ changes nothing."""

    def train(scaler: torch.amp.GradScaler | None) -> nn.Module:
        model = make_mlp(device)
        x, y = make_data(device)
        reg = Regularizer(model, l1=L1, l2=L2, method=method)
        opt = adam(reg.param_groups())
        reg.attach(opt, scaler=scaler)
        for _ in range(10):
            opt.zero_grad()
            loss = reg.penalize(nn.functional.mse_loss(model(x), y))
            if scaler is None:
                loss.backward()
                reg.clip_grad_norm_(MAX_NORM)
                opt.step()
            else:
                scaler.scale(loss).backward()
                scaler.unscale_(opt)
                reg.clip_grad_norm_(MAX_NORM)
                scaler.step(opt)
                scaler.update()
        return model

    scaled = train(torch.amp.GradScaler(device.type, init_scale=2.0**12))
    assert max_abs_diff(scaled, train(None)) <= 1e-12


def test_excluded_parameters_are_clipped_too(device: torch.device) -> None:
    model, reg = backward_once("loss", l1=L1, l2=L2, device=device, dtype=torch.float64)
    bias = model[0].bias  # type: ignore[index]
    assert all(bias is not p for p in reg.parameters)
    data_bias_grad = bias.grad.clone()  # only the data loss reaches a bias
    norm = reg.clip_grad_norm_(MAX_NORM)
    c = MAX_NORM / (float(norm) + 1e-6)
    torch.testing.assert_close(bias.grad, c * data_bias_grad, rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_norm": -1.0}, ValueError, r"max_norm must be >= 0 \(math.inf: no clipping\)"),
        ({"max_norm": math.nan}, ValueError, r"max_norm must be >= 0"),
        ({"max_norm": "1.0"}, TypeError, r"max_norm must be a number, but got '1.0'"),
        ({"max_norm": True}, TypeError, r"max_norm must be a number"),
        ({"max_norm": 1.0, "norm_type": "2"}, TypeError, r"norm_type must be a number"),
    ],
)
def test_bad_max_norm_or_norm_type_is_refused(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    _, reg = backward_once("loss", l1=L1, l2=L2, device=torch.device("cpu"), dtype=torch.float64)
    with pytest.raises(error, match=match):
        reg.clip_grad_norm_(**kwargs)  # type: ignore[arg-type]
