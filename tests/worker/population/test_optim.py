"""The population optimizer applies each method by the kernel its METHOD_TABLE row names, and
refuses a method without one instead of training it unpenalized (test_equivalence.py holds
every method's kernel equal to the single-trial Regularizer)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from regcore.regularizers import method_spec
from regcore.worker.population import PopulationOptimizer, Stack, _optim


def stack() -> Stack:
    torch.manual_seed(0)
    return Stack(nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 1)).double(), 2)


def test_a_row_without_a_population_kernel_is_refused_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = dataclasses.replace(method_spec("fused"), name="fused_v2", population=None)
    monkeypatch.setattr(_optim, "method_spec", lambda method: row)
    with pytest.raises(ValueError, match=r"method 'fused_v2' has no population kernel"):
        PopulationOptimizer(stack(), optimizer="adam", method="fused_v2")


def test_an_unknown_method_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown method 'lasso'; choose one of"):
        PopulationOptimizer(stack(), optimizer="adam", method="lasso")


def test_the_gradient_kernel_adds_the_penalty_gradient_per_member() -> None:
    s = stack()
    optimizer = PopulationOptimizer(s, optimizer="sgd", method="fused")
    optimizer.set_member(0, lr=0.1, l1=0.0, l2=0.0)
    optimizer.set_member(1, lr=0.1, l1=0.5, l2=0.25)
    leaves = s.leaves()
    before = [w.detach().clone() for w in leaves]
    for w in leaves:
        w.grad = torch.zeros_like(w)
    optimizer.step()
    for i, (w, w0) in enumerate(zip(leaves, before, strict=True)):
        if s.regularized[i]:
            expected = w0[1] - 0.1 * (0.5 * torch.sign(w0[1]) + 2 * 0.25 * w0[1])
            assert torch.equal(w[0].detach(), w0[0])
            torch.testing.assert_close(w[1].detach(), expected, rtol=0, atol=1e-15)
        else:
            assert torch.equal(w.detach(), w0)
