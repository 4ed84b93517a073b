"""The ``hook`` method against the source article's module full-backward hook.

The article registers ``module.register_full_backward_hook`` and adds ``λ·sign(w)`` to every
parameter's ``.grad`` from there. That hook fires when the gradient with respect to the
module's *inputs* is ready, which is the wrong moment; each test shows one way it fails and that
the per-parameter post-accumulate-grad hook gives exactly the gradient of the ``loss`` method.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from regcore.regularizers import Regularizer

L1 = 0.1


class ArticleL1Regularizer(nn.Module):
    """The source article's Method 2, verbatim apart from names and types."""

    def __init__(self, module: nn.Module, weight_decay: float, *, guarded: bool = True) -> None:
        super().__init__()
        self.module = module
        self.weight_decay = weight_decay
        self.guarded = guarded
        self.hook = module.register_full_backward_hook(self._l1_hook)

    def _l1_hook(self, module: nn.Module, grad_input: object, grad_output: object) -> None:
        for param in self.module.parameters():
            if param.grad is not None or not self.guarded:
                param.grad += self.weight_decay * torch.sign(param.data)  # type: ignore[operator]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.module(x)
        return out


def weight_grads(model: nn.Module, method: str, x: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of the regularized weights after one backward with ``method``."""
    reg = Regularizer(model, l1=L1, method=method)
    reg.attach(torch.optim.SGD(reg.param_groups(), lr=0.1))
    model.zero_grad(set_to_none=True)
    reg.penalize(model(x).square().sum()).backward()
    reg.detach()
    return [p.grad.clone() for p in reg.parameters if p.grad is not None]


def first_layer_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).double()


X = torch.randn(5, 4, dtype=torch.float64)


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b) > 0
    for g, h in zip(a, b, strict=True):
        torch.testing.assert_close(g, h, rtol=0, atol=1e-12)


def test_first_layer_with_set_to_none_gets_its_l1_term() -> None:
    # The input does not require grad, so the article's hook on the first layer runs before
    # the layer's .grad exists: with zero_grad(set_to_none=True) it raises.
    article = first_layer_model()
    ArticleL1Regularizer(article[0], L1, guarded=False)
    article.zero_grad(set_to_none=True)
    with pytest.raises(TypeError):
        article(X).square().sum().backward()

    assert_same(
        weight_grads(first_layer_model(), "hook", X), weight_grads(first_layer_model(), "loss", X)
    )


def test_first_layer_term_is_not_silently_dropped() -> None:
    # Guarded with `if param.grad is not None`, the article's hook drops the first layer's term.
    article = first_layer_model()
    ArticleL1Regularizer(article[0], L1)
    article.zero_grad(set_to_none=True)
    article(X).square().sum().backward()
    plain = first_layer_model()
    plain(X).square().sum().backward()
    assert torch.equal(article[0].weight.grad, plain[0].weight.grad)  # the L1 term is missing

    expected = weight_grads(first_layer_model(), "loss", X)
    assert_same(weight_grads(first_layer_model(), "hook", X), expected)
    assert not torch.equal(expected[0], plain[0].weight.grad)


class Twice(nn.Module):
    """One layer applied twice in forward (weight sharing across depth)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp = nn.Linear(4, 6)
        self.shared = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shared(torch.tanh(self.shared(torch.tanh(self.inp(x)))))


def test_layer_used_twice_gets_l1_once() -> None:
    article = Twice().double()
    ArticleL1Regularizer(article.shared, L1)
    for p in article.parameters():  # .grad exists (zeros), as from the second step on with
        p.grad = torch.zeros_like(p)  # zero_grad(set_to_none=False)
    article(X).square().sum().backward()
    plain = Twice().double()
    plain(X).square().sum().backward()
    # The article's hook fires once per use: λ·sign(w) lands on the shared weight twice.
    extra = article.shared.weight.grad - plain.shared.weight.grad
    torch.testing.assert_close(extra, 2 * L1 * plain.shared.weight.detach().sign())

    expected = weight_grads(Twice().double(), "loss", X)
    torch.testing.assert_close(expected[1] - plain.shared.weight.grad, extra / 2)
    assert_same(weight_grads(Twice().double(), "hook", X), expected)


def inplace_relu_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, 8), nn.Linear(8, 8), nn.ReLU(inplace=True), nn.Linear(8, 1)
    ).double()


def test_inplace_relu_after_the_layer_works() -> None:
    article = inplace_relu_model()
    ArticleL1Regularizer(article[1], L1)
    with pytest.raises(RuntimeError, match="inplace"):
        article(X).square().sum().backward()

    assert_same(
        weight_grads(inplace_relu_model(), "hook", X), weight_grads(inplace_relu_model(), "loss", X)
    )


def test_hook_gradient_is_exactly_l1_sign_plus_2_l2_w() -> None:
    model = nn.Linear(3, 2, bias=False).double()
    reg = Regularizer(model, l1=0.25, l2=0.5, method="hook")
    reg.attach(torch.optim.SGD(reg.param_groups(), lr=0.1))
    model.weight.sum().mul(0).backward()  # a zero data gradient
    expected = 0.25 * model.weight.detach().sign() + 2 * 0.5 * model.weight.detach()
    assert torch.equal(model.weight.grad, expected)
