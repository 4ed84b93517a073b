"""The proximal method reaches the solutions scikit-learn computes, with exact zeros.

A linear model trained full-batch on ``mse_loss`` (mean) with ``R(w) = λ₁·Σ|w| + λ₂·Σw²`` is
scikit-learn's Lasso / ElasticNet / Ridge in another parametrization:

- ``Lasso(alpha)`` ↔ ``λ₁ = 2·alpha``,
- ``ElasticNet(alpha, l1_ratio=ρ)`` ↔ ``λ₁ = 2αρ``, ``λ₂ = α(1 − ρ)``,
- ``Ridge(alpha)`` ↔ ``λ₂ = alpha/n``,

and the default rule leaves the bias unregularized, as scikit-learn's intercept is. So the
fixed point of every optimizer the proximal method supports must be scikit-learn's solution:
the same coefficients to 1e-6 and the same set of exact zeros. Everything runs in float64 on
the CPU; the schedules were found by experiment and converge with a wide margin (max errors of
1e-13 to 1e-8 where 1e-6 is asked).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any, TypedDict

import numpy as np
import pytest
import torch
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge
from torch import nn
from torch.nn import functional as F

from regcore.regularizers import METHODS, Regularizer, sparsity

N, D, INFORMATIVE = 200, 20, 5
LASSO_ALPHA = 0.05
ENET_ALPHA, ENET_RHO = 0.1, 0.5
RIDGE_ALPHA = 40.0
TOL = 1e-6

Groups = list[dict[str, Any]]
OptimizerFactory = Callable[[Groups], torch.optim.Optimizer]
AfterStep = Callable[[torch.optim.Optimizer, nn.Linear], None]


# -- data, references and a full-batch training loop -----------------------------------------


@functools.cache
def regression() -> tuple[np.ndarray, np.ndarray]:
    """``y = X·β + 1.5 + noise`` with ``INFORMATIVE`` non-zero ``β``: a Lasso with some zeros."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, D))
    beta = np.zeros(D)
    beta[:INFORMATIVE] = rng.uniform(1.0, 3.0, INFORMATIVE) * rng.choice([-1.0, 1.0], INFORMATIVE)
    y = x @ beta + 1.5 + 0.5 * rng.standard_normal(N)
    return x, y


@functools.cache
def lipschitz() -> float:
    """L of the gradient of ``mse_loss`` in (w, b): the largest eigenvalue of ``2/n·AᵀA``."""
    x, _ = regression()
    a = np.hstack([x, np.ones((N, 1))])
    return float(2.0 / N * np.linalg.eigvalsh(a.T @ a).max())


@functools.cache
def lasso() -> Lasso:
    x, y = regression()
    return Lasso(alpha=LASSO_ALPHA, tol=1e-12, max_iter=1_000_000).fit(x, y)


@functools.cache
def elastic_net() -> ElasticNet:
    x, y = regression()
    return ElasticNet(alpha=ENET_ALPHA, l1_ratio=ENET_RHO, tol=1e-12, max_iter=1_000_000).fit(x, y)


class Penalty(TypedDict):
    l1: float
    l2: float


LASSO_PENALTY = Penalty(l1=2 * LASSO_ALPHA, l2=0.0)
ENET_PENALTY = Penalty(l1=2 * ENET_ALPHA * ENET_RHO, l2=ENET_ALPHA * (1 - ENET_RHO))
REFERENCES: dict[str, tuple[Callable[[], Lasso | ElasticNet], Penalty]] = {
    "lasso": (lasso, LASSO_PENALTY),
    "elastic_net": (elastic_net, ENET_PENALTY),
}


def linear_model() -> nn.Linear:
    """``nn.Linear(D, 1)`` in float64 with a fixed random start (zeros must be made, not kept)."""
    model = nn.Linear(D, 1, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=torch.float64) - 0.5)
    return model


def train(
    make_optimizer: OptimizerFactory,
    *,
    steps: int,
    method: str | None = "proximal",
    l1: float = 0.0,
    l2: float = 0.0,
    gamma: float = 1.0,
    after_step: AfterStep | None = None,
) -> nn.Linear:
    """Full-batch training on ``mse_loss``; lr multiplied by ``gamma`` after every step.

    ``method=None`` trains without a Regularizer (weight and bias in their own groups).
    """
    x_np, y_np = regression()
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)[:, None]
    model = linear_model()
    reg = None
    if method is None:
        optimizer = make_optimizer([{"params": [model.weight]}, {"params": [model.bias]}])
    else:
        reg = Regularizer(model, l1=l1, l2=l2, method=method)
        # The default rule regularizes the weight only, as scikit-learn leaves the intercept.
        assert len(reg.parameters) == 1
        assert reg.parameters[0] is model.weight
        optimizer = make_optimizer(reg.param_groups())
        reg.attach(optimizer)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        (reg.penalize(loss) if reg is not None else loss).backward()
        optimizer.step()
        if after_step is not None:
            after_step(optimizer, model)
        scheduler.step()
    return model


def coefficients(model: nn.Linear) -> np.ndarray:
    return model.weight.detach().numpy().ravel().copy()


def max_error(model: nn.Linear, reference: Lasso | ElasticNet | Ridge) -> float:
    return float(np.abs(coefficients(model) - reference.coef_).max())


def assert_has_zeros_and_non_zeros(coef: np.ndarray) -> None:
    # Guards the zero-set comparisons against a trivial pattern (all or nothing zero).
    zeros = int((coef == 0).sum())
    assert 3 <= zeros <= D - 3, f"{zeros} exact zeros of {D}"


def assert_matches(model: nn.Linear, reference: Lasso | ElasticNet | Ridge) -> None:
    """Coefficients and intercept within ``TOL``, and exactly the same exact zeros."""
    coef = coefficients(model)
    np.testing.assert_array_equal(coef == 0, reference.coef_ == 0)
    assert max_error(model, reference) <= TOL
    assert abs(model.bias.item() - float(reference.intercept_)) <= TOL


def sgd(**options: Any) -> OptimizerFactory:
    def make(groups: Groups) -> torch.optim.Optimizer:
        return torch.optim.SGD(groups, lr=1.0 / lipschitz(), **options)

    return make


# -- 1. full-batch proximal gradient descent is scikit-learn's Lasso / ElasticNet -------------


@pytest.mark.parametrize("problem", ["lasso", "elastic_net"])
def test_proximal_gradient_descent_reaches_sklearn_solution(problem: str) -> None:
    make_reference, penalty = REFERENCES[problem]
    reference = make_reference()
    assert_has_zeros_and_non_zeros(reference.coef_)
    # ISTA with step 1/L converges linearly; cond(AᵀA) ≈ 3.7 makes 400 steps plenty.
    model = train(sgd(), steps=400, **penalty)
    assert_matches(model, reference)


@pytest.mark.parametrize(
    "options",
    [{"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}, {"momentum": 0.9, "dampening": 0.5}],
    ids=["heavy_ball", "nesterov", "dampened"],
)
def test_proximal_sgd_with_momentum_reaches_sklearn_lasso(options: dict[str, Any]) -> None:
    # Momentum lengthens the step to lr·(1 − d)/(1 − μ); thresholding with the bare lr would
    # converge to the Lasso of λ₁·(1 − μ)/(1 − d) instead (max error 0.065 for μ = 0.9).
    model = train(sgd(**options), steps=600, **LASSO_PENALTY)
    assert_matches(model, lasso())


# -- 2. proximal Adam (ProxGen) with a decaying learning rate --------------------------------

# Found by experiment (12 generated data sets, all ≤ 2.2e-13): lr 0.1 × 0.998 a step, 1000 steps.
# Full-batch Adam's step lr/(√v̂ + ε) grows as the gradients vanish (v̂ forgets with β₂, so √v̂
# shrinks by up to √β₂ ≈ 0.9995 a step); decaying lr faster than that keeps the iteration
# from oscillating, slowly enough (Σ lr ≈ 43) that it arrives first.
ADAM_LR, ADAM_GAMMA, ADAM_STEPS = 0.1, 0.998, 1000


@pytest.mark.parametrize(
    "make_optimizer",
    [
        pytest.param(lambda g: torch.optim.Adam(g, lr=ADAM_LR), id="adam"),
        pytest.param(lambda g: torch.optim.AdamW(g, lr=ADAM_LR), id="adamw"),
        pytest.param(lambda g: torch.optim.Adam(g, lr=ADAM_LR, amsgrad=True), id="amsgrad"),
    ],
)
@pytest.mark.parametrize("problem", ["lasso", "elastic_net"])
def test_proximal_adam_with_decaying_lr_reaches_sklearn_solution(
    make_optimizer: OptimizerFactory, problem: str
) -> None:
    make_reference, penalty = REFERENCES[problem]
    model = train(make_optimizer, steps=ADAM_STEPS, gamma=ADAM_GAMMA, **penalty)
    assert_matches(model, make_reference())


def test_adamw_like_scalar_threshold_misses_the_lasso_solution() -> None:
    """Why the threshold must be Adam's per-coordinate step ``lr/(√v̂ + ε)``.

    At the Lasso solution a non-zero weight's data gradient is ``−λ₁·sign w``, and Adam moves it
    by ``lr·m̂/(√v̂ + ε) ≈ lr·sign(∇f)``, whatever λ₁ is. The per-coordinate threshold
    ``λ₁·lr/(√v̂ + ε) ≈ lr`` cancels that step exactly; the scalar ``lr·λ₁`` an AdamW-style
    implementation would use does not, so the solution is not its fixed point. With the very
    schedule that takes ProxGen to 1e-13, it ends far from the solution, with no exact zeros.
    """
    l1 = LASSO_PENALTY["l1"]

    def scalar_threshold(optimizer: torch.optim.Optimizer, model: nn.Linear) -> None:
        tau = float(optimizer.param_groups[0]["lr"]) * l1
        with torch.no_grad():
            model.weight.sub_(model.weight.clamp(-tau, tau))

    model = train(
        lambda g: torch.optim.Adam(g, lr=ADAM_LR),
        steps=ADAM_STEPS,
        gamma=ADAM_GAMMA,
        method=None,
        after_step=scalar_threshold,
    )
    reference = lasso()
    assert max_error(model, reference) > 1e-3
    assert not np.array_equal(coefficients(model) == 0, reference.coef_ == 0)


# -- 3. L2 by every method is the Ridge closed form ------------------------------------------


@functools.cache
def ridge() -> Ridge:
    x, y = regression()
    return Ridge(alpha=RIDGE_ALPHA, solver="cholesky").fit(x, y)


def test_ridge_reference_differs_from_least_squares() -> None:
    # Guards the test below against a λ₂ too small to tell regularized from not.
    x, y = regression()
    ols = LinearRegression().fit(x, y)
    assert np.abs(ridge().coef_ - ols.coef_).max() > 1e-2


@pytest.mark.parametrize("method", METHODS)
def test_l2_by_every_method_reaches_ridge_closed_form(method: str) -> None:
    l2 = RIDGE_ALPHA / N
    # The penalty adds 2λ₂ to the curvature of the weights: step 1/(L + 2λ₂) for every method
    # (for proximal any step ≤ 1/L would do, the L2 being in the proximal operator).
    lr = 1.0 / (lipschitz() + 2 * l2)
    model = train(lambda g: torch.optim.SGD(g, lr=lr), steps=400, method=method, l2=l2)
    reference = ridge()
    assert max_error(model, reference) <= TOL
    assert abs(model.bias.item() - float(reference.intercept_)) <= TOL


# -- 4. subgradient L1 gives no exact zeros ---------------------------------------------------


def test_l1_in_the_loss_leaves_no_exact_zeros_where_proximal_makes_them() -> None:
    """Why the proximal method exists: L1 by (sub)gradient never lands on exactly 0.

    ``sign(w)`` pushes a weight the Lasso zeroes back and forth across 0 with steps of about
    ``lr·λ₁``; it hovers near zero but is never zero. The proximal step sets it to 0 exactly.
    """
    subgradient = train(sgd(), steps=400, method="loss", **LASSO_PENALTY)
    proximal = train(sgd(), steps=400, method="proximal", **LASSO_PENALTY)
    assert sparsity(subgradient) == 0.0
    assert sparsity(proximal) == float((lasso().coef_ == 0).mean()) > 0.0
    # Near zero, though: every weight the Lasso zeroes is within a couple of steps of it.
    near = 2 * LASSO_PENALTY["l1"] / lipschitz()
    assert np.abs(coefficients(subgradient)[lasso().coef_ == 0]).max() <= near


# -- 5. RMSprop, and optimizers whose step is unknown ----------------------------------------

# Found by experiment (8 data seeds). RMSprop's square_avg forgets fast (α = 0.99), so once
# the gradients vanish its step is about lr·sign(g): lr must decay, yet slowly enough to
# arrive. Plain and centered: lr 0.05 × 0.995 for 1500 steps (max 2.2e-13); with momentum it
# converges more slowly, lr 0.03 × 0.997 (max 3.4e-8).
RMSPROP_CASES = [
    pytest.param({}, 0.05, 0.995, id="plain"),
    pytest.param({"centered": True}, 0.05, 0.995, id="centered"),
    pytest.param({"momentum": 0.5}, 0.03, 0.997, id="momentum"),
]


@pytest.mark.parametrize(("options", "lr", "gamma"), RMSPROP_CASES)
def test_proximal_rmsprop_with_decaying_lr_reaches_sklearn_lasso(
    options: dict[str, Any], lr: float, gamma: float
) -> None:
    model = train(
        lambda g: torch.optim.RMSprop(g, lr=lr, **options),
        steps=1500,
        gamma=gamma,
        **LASSO_PENALTY,
    )
    assert_matches(model, lasso())


@pytest.mark.parametrize("optimizer_cls", [torch.optim.Adagrad, torch.optim.NAdam])
def test_proximal_refuses_an_optimizer_whose_step_it_does_not_know(
    optimizer_cls: Callable[..., torch.optim.Optimizer],
) -> None:
    model = linear_model()
    reg = Regularizer(model, l1=0.1, method="proximal")
    optimizer = optimizer_cls(reg.param_groups(), lr=0.1)
    with pytest.raises(ValueError, match=optimizer_cls.__name__) as info:
        reg.attach(optimizer)
    assert "SGD, Adam, AdamW and RMSprop" in str(info.value)
    assert not optimizer._optimizer_step_post_hooks


def test_proximal_refuses_momentum_without_a_steady_step() -> None:
    # With μ = 1 the momentum buffer never settles: there is no step lr/(1 − μ) to threshold by.
    reg = Regularizer(linear_model(), l1=0.1, method="proximal")
    optimizer = torch.optim.SGD(reg.param_groups(), lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match=r"0 <= momentum < 1, but got momentum=1.0"):
        reg.attach(optimizer)


# -- 6. once per optimizer step; parameters without a gradient are left alone -----------------


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).double()


def mlp_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 6, generator=g, dtype=torch.float64)
    y = torch.randn(32, 3, generator=g, dtype=torch.float64)
    return x, y


OPTIMIZERS: dict[str, OptimizerFactory] = {
    "sgd": lambda g: torch.optim.SGD(g, lr=0.1),
    "sgd_momentum": lambda g: torch.optim.SGD(g, lr=0.05, momentum=0.9),
    "adam": lambda g: torch.optim.Adam(g, lr=1e-2),
    "rmsprop": lambda g: torch.optim.RMSprop(g, lr=1e-2),
}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_proximal_acts_once_per_step_under_gradient_accumulation(optimizer: str) -> None:
    k, steps = 4, 15
    x, y = mlp_data()
    models = []
    for micro_steps in (1, k):
        model = mlp()
        reg = Regularizer(
            model, l1=0.05, l2=0.01, method="proximal", accumulation_steps=micro_steps
        )
        opt = OPTIMIZERS[optimizer](reg.param_groups())
        reg.attach(opt)
        for _ in range(steps):
            opt.zero_grad()
            for xb, yb in zip(x.chunk(micro_steps), y.chunk(micro_steps), strict=True):
                # Equal chunks: the mean of the k chunk means is the full-batch mean.
                reg.penalize(F.mse_loss(model(xb), yb) / micro_steps).backward()
            opt.step()
        models.append(model)
    full, accumulated = models
    assert sparsity(full) > 0  # the threshold did act
    assert sparsity(accumulated) == sparsity(full)
    for p, q in zip(full.parameters(), accumulated.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-12)


class Branches(nn.Module):
    """Three layers summed; ``forward`` uses only those named, so the others get no gradient."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(6, 3, dtype=torch.float64)
        self.b = nn.Linear(6, 3, dtype=torch.float64)
        self.c = nn.Linear(6, 3, dtype=torch.float64)

    def forward(self, x: torch.Tensor, names: str) -> torch.Tensor:
        return torch.stack([getattr(self, n)(x) for n in names]).sum(0)


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_proximal_skips_parameters_that_got_no_gradient(optimizer: str) -> None:
    x, _ = mlp_data()
    model = Branches()
    # λ₁ large enough that each step zeroes more of a's weights, small enough to leave some.
    reg = Regularizer(model, l1=0.3, method="proximal")
    opt = OPTIMIZERS[optimizer](reg.param_groups())
    reg.attach(opt)

    opt.zero_grad()
    model(x, "ab").square().mean().backward()
    opt.step()  # b has optimizer state from here on; c never gets any
    before = copy.deepcopy(model)
    assert sparsity([before.b.weight]) < 1  # thresholding b again would change it

    opt.zero_grad()  # set_to_none: b and c have no gradient in this step
    model(x, "a").square().mean().backward()
    opt.step()

    assert sparsity([model.a.weight]) > sparsity([before.a.weight])  # this step did threshold
    for name in ("b", "c"):
        for p, q in zip(
            getattr(model, name).parameters(), getattr(before, name).parameters(), strict=True
        ):
            assert torch.equal(p, q), name
    assert sparsity([model.c.weight]) == 0  # never stepped, never thresholded
