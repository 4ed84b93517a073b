"""The population's optimizer step: every member's regularized update in one pass over the
``[K, P]`` parameters, each member with its own lr, λ₁ and λ₂ (``[K, 1]`` columns).

It is the optimizer's own update with the regularization method inside it, and per member it
computes what ``torch.optim`` plus a :class:`~regcore.regularizers.Regularizer` computes for
a single trial (the tests hold them equal to 1e-10 in float64):

- the penalty methods (``loss``, ``hook``, ``fused``; ``weight_decay`` with λ₁ = 0) add
  ``λ₁·sign w + 2λ₂·w`` to the gradient of the regularized coordinates;
- ``decoupled`` shrinks them before the update, ``w ← w·(1 − lr·2λ₂) − lr·λ₁·sign w``;
- ``proximal`` soft-thresholds them after it, with the step the optimizer took: ``lr``
  (× 1/(1 − μ) with momentum) for SGD and RMSprop, Adam's ``lr/(√v̂ + ε)`` per coordinate.

SGD (momentum, Nesterov), Adam, AdamW (its decay is 0: the method regularizes) and RMSprop
keep their state as ``[K, P]`` tensors, and Adam its step count per member, so a member that
joins later (a refill) starts fresh. The lr scales the update, never the gradient.
"""

from __future__ import annotations

import torch

from regcore.regularizers import OPTIMIZERS
from worker.population._stack import Stack

PENALTY_METHODS = frozenset({"loss", "hook", "fused", "weight_decay"})


class PopulationOptimizer:
    def __init__(
        self,
        stack: Stack,
        *,
        optimizer: str,
        method: str,
        momentum: float | None = None,
        nesterov: bool | None = None,
        betas: tuple[float, float] | None = None,
        eps: float = 1e-8,
        alpha: float = 0.99,
    ) -> None:
        self._stack = stack
        self._rule = OPTIMIZERS[optimizer].step_rule
        self._method = method
        self._momentum = momentum or 0.0
        self._nesterov = bool(nesterov)
        self._betas = betas or (0.9, 0.999)
        self._eps = eps
        self._alpha = alpha
        flat = stack.flat
        column = (stack.k, 1)
        self.lr = torch.zeros(column, dtype=flat.dtype, device=flat.device)
        self.l1 = torch.zeros_like(self.lr)
        self.l2 = torch.zeros_like(self.lr)
        self._steps = torch.zeros(column, dtype=torch.float64, device=flat.device)
        self._first = torch.zeros_like(flat, requires_grad=False)  # momentum / Adam's m
        self._second = torch.zeros_like(flat, requires_grad=False)  # Adam's or RMSprop's v
        self._uniform_lr = bool((stack.lr_scale == 1).all())

    def set_member(self, member: int, *, lr: float, l1: float, l2: float) -> None:
        """Member ``member``'s hyperparameters; its optimizer state starts afresh."""
        self.lr[member] = lr
        self.l1[member] = l1
        self.l2[member] = l2
        self._steps[member] = 0
        self._first[member] = 0
        self._second[member] = 0

    @torch.no_grad()
    def step(self, lr_factor: torch.Tensor | float = 1.0) -> None:
        """One step of every member: ``lr_factor`` (a ``[K, 1]`` column or a number) is the
        schedule's multiple of each member's lr now; a member with lr 0 stays as it is."""
        stack = self._stack
        w, mask = stack.flat, stack.mask
        grad = w.grad
        assert grad is not None, "step() after backward()"
        lr = self.lr * lr_factor  # [K, 1]
        rate = lr if self._uniform_lr else lr * stack.lr_scale  # [K, 1] or [K, P]
        if self._method in PENALTY_METHODS:
            grad += mask * (self.l1 * torch.sign(w) + (2 * self.l2) * w)
        elif self._method == "decoupled":
            signs = torch.sign(w)
            w *= 1 - rate * (2 * self.l2) * mask
            w -= rate * self.l1 * mask * signs
        self._steps += (lr != 0).to(torch.float64)
        if self._rule == "sgd":
            self._sgd(w, grad, rate)
        elif self._rule == "adam":
            self._adam(w, grad, rate)
        else:
            self._rmsprop(w, grad, rate)

    def _sgd(self, w: torch.Tensor, grad: torch.Tensor, rate: torch.Tensor) -> None:
        direction = grad
        if self._momentum:
            buf = self._first
            buf.mul_(self._momentum).add_(grad)
            direction = grad.add(buf, alpha=self._momentum) if self._nesterov else buf
        w -= rate * direction
        if self._method == "proximal":
            self._prox_scalar(w, rate / (1 - self._momentum))

    def _adam(self, w: torch.Tensor, grad: torch.Tensor, rate: torch.Tensor) -> None:
        beta1, beta2 = self._betas
        m, v = self._first, self._second
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        steps = self._steps.clamp(min=1)  # an idle member's corrections do not matter
        correction1 = (1 - beta1**steps).to(w.dtype)
        correction2_sqrt = (1 - beta2**steps).sqrt().to(w.dtype)
        denominator = (v.sqrt() / correction2_sqrt).add_(self._eps)
        w -= (rate / correction1) * (m / denominator)
        if self._method == "proximal":
            # t = lr·c/D with D = √v + ε·c, c = √(1 − β₂ᵗ): the step Adam just took.
            d = v.sqrt() + self._eps * correction2_sqrt
            self._prox_scaled(w, d, rate * correction2_sqrt)

    def _rmsprop(self, w: torch.Tensor, grad: torch.Tensor, rate: torch.Tensor) -> None:
        v = self._second
        v.mul_(self._alpha).addcmul_(grad, grad, value=1 - self._alpha)
        average = v.sqrt().add_(self._eps)
        if self._momentum:
            buf = self._first
            buf.mul_(self._momentum).addcdiv_(grad, average)
            w -= rate * buf
        else:
            w -= rate * (grad / average)
        if self._method == "proximal":
            self._prox_scaled(w, v.sqrt().add_(self._eps), rate / (1 - self._momentum))

    def _prox_scalar(self, w: torch.Tensor, t: torch.Tensor) -> None:
        """``w ← sign w·max(|w| − t·λ₁, 0)/(1 + 2t·λ₂)`` on the regularized coordinates."""
        shrunk = _soft_threshold(w, t * self.l1) / (1 + 2 * t * self.l2)
        w.copy_(torch.where(self._stack.regularized, shrunk, w))

    def _prox_scaled(self, w: torch.Tensor, d: torch.Tensor, t_times_d: torch.Tensor) -> None:
        """The prox with the per-coordinate step ``t = t_times_d / d``, computed as
        ``soft(w·d, λ₁·t·d)/(d + 2λ₂·t·d)`` (as the single-trial method does)."""
        shrunk = _soft_threshold(w * d, self.l1 * t_times_d) / (d + 2 * self.l2 * t_times_d)
        w.copy_(torch.where(self._stack.regularized, shrunk, w))


def _soft_threshold(x: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """``sign x·max(|x| − τ, 0)``: the same numbers as ``softshrink``, with a tensor ``τ``."""
    return torch.sign(x) * (x.abs() - tau).clamp_min(0)
