"""Every method applies the same R(w) = λ₁·Σ|w| + λ₂·Σw² (float64, 50 steps).

Where the maths says two methods are the same update, they must give the same parameters to
1e-10; these are the contract tests of the regularizer core (the README's method table), on
every device present.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.regcore.regularizers.helpers import L2, make_data, make_mlp, max_abs_diff, train

PENALTY_METHODS = ["loss", "hook", "fused"]


def sgd(groups: list[dict[str, object]]) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=0.05)


def adam(groups: list[dict[str, object]]) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=1e-2)


@pytest.mark.parametrize("method", ["weight_decay", "decoupled", *PENALTY_METHODS])
def test_plain_sgd_l2_is_the_same_for_every_method(method: str, device: torch.device) -> None:
    reference = train("loss", sgd, l1=0.0, device=device)
    model = train(method, sgd, l1=0.0, device=device)
    assert max_abs_diff(model, reference) <= 1e-10


@pytest.mark.parametrize("method", ["decoupled", *PENALTY_METHODS])
def test_plain_sgd_l1_and_l2_is_the_same_for_every_l1_method(
    method: str, device: torch.device
) -> None:
    reference = train("loss", sgd, device=device)
    model = train(method, sgd, device=device)
    assert max_abs_diff(model, reference) <= 1e-10


def test_regularization_changes_the_result(device: torch.device) -> None:
    # Guards the tests above against comparing two unregularized runs.
    assert max_abs_diff(train("loss", sgd, device=device), train(None, sgd, device=device)) > 1e-3


@pytest.mark.parametrize("method", ["weight_decay", *PENALTY_METHODS])
def test_adam_coupled_l2_is_the_same_for_every_penalty_method(
    method: str, device: torch.device
) -> None:
    reference = train("loss", adam, l1=0.0, device=device)
    model = train(method, adam, l1=0.0, device=device)
    assert max_abs_diff(model, reference) <= 1e-10


@pytest.mark.parametrize("method", ["hook", "fused"])
def test_adam_l1_and_l2_is_the_same_for_every_penalty_method(
    method: str, device: torch.device
) -> None:
    reference = train("loss", adam, device=device)
    model = train(method, adam, device=device)
    assert max_abs_diff(model, reference) <= 1e-10


def test_decoupled_without_l1_is_exactly_adamw(device: torch.device) -> None:
    model = train("decoupled", adam, l1=0.0, device=device)

    reference = make_mlp(device)
    x, y = make_data(device)
    weights = [p for p in reference.parameters() if p.ndim >= 2]
    biases = [p for p in reference.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": weights, "weight_decay": 2 * L2}, {"params": biases, "weight_decay": 0.0}],
        lr=1e-2,
    )
    for _ in range(50):
        opt.zero_grad()
        nn.functional.mse_loss(reference(x), y).backward()
        opt.step()

    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.equal(p, q)
