"""The population's optimizer step: every member's regularized update in one pass over the
stacked parameters, each member with its own lr, λ₁ and λ₂.

It is the optimizer's own update with the regularization method inside it, and per member it
computes what ``torch.optim`` plus a :class:`~regcore.regularizers.Regularizer` computes for
a single trial (the tests hold them equal to 1e-10 in float64). Each method runs the kernel its
row of ``METHOD_TABLE`` names (a method without one is refused, never trained unpenalized):

- ``gradient`` (``loss``, ``hook``, ``fused``; ``weight_decay`` with λ₁ = 0) adds
  ``λ₁·sign w + 2λ₂·w`` to the gradient of the regularized parameters;
- ``decoupled`` shrinks them before the update, ``w ← w·(1 − lr·2λ₂) − lr·λ₁·sign w``;
- ``proximal`` soft-thresholds them after it, with the step the optimizer took: ``lr``
  (× 1/(1 − μ) with momentum) for SGD and RMSprop, Adam's ``lr/(√v̂ + ε)`` per coordinate.

SGD (momentum, Nesterov), Adam, AdamW (its decay is 0: the method regularizes) and RMSprop
keep their state per stacked parameter, and Adam its step count per member, so a member that
joins later (a refill) starts fresh. The lr scales the update, never the gradient. Every
operation is in place on the parameter, its gradient, its state or a scratch buffer kept
from step to step (a temporary as large as the parameters would cost, on the CPU, more than
the arithmetic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from regcore.regularizers import OPTIMIZERS, MethodSpec, method_spec
from regcore.worker.population._stack import Stack


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
        self._before_update, self._proximal = _kernel(method_spec(method))
        self._momentum = momentum or 0.0
        self._nesterov = bool(nesterov)
        self._betas = betas or (0.9, 0.999)
        self._eps = eps
        self._alpha = alpha
        self._params = stack.leaves()
        first = self._params[0]
        self.lr = torch.zeros(stack.k, dtype=first.dtype, device=first.device)
        self.l1 = torch.zeros_like(self.lr)
        self.l2 = torch.zeros_like(self.lr)
        self._steps = torch.zeros(stack.k, dtype=torch.float64, device=first.device)
        moments = self._rule == "adam" or self._momentum > 0
        seconds = self._rule in ("adam", "rmsprop")
        self._first = [torch.zeros_like(p, requires_grad=False) for p in self._params] * moments
        self._second = [torch.zeros_like(p, requires_grad=False) for p in self._params] * seconds
        self._scratch = [torch.empty_like(p, requires_grad=False) for p in self._params]
        wide = self._proximal and self._rule != "sgd"
        self._scratch2 = [torch.empty_like(p, requires_grad=False) for p in self._params] * wide
        self._now = _Columns(self, self.lr)

    def set_member(self, member: int, *, lr: float, l1: float, l2: float) -> None:
        """Member ``member``'s hyperparameters; its optimizer state starts afresh."""
        self.lr[member] = lr
        self.l1[member] = l1
        self.l2[member] = l2
        self._steps[member] = 0
        for state in (*self._first, *self._second):
            state[member] = 0

    @torch.no_grad()
    def step(self, lr_factor: torch.Tensor | float = 1.0) -> None:
        """One step of every member: ``lr_factor`` (one number per member, or one for all) is
        the schedule's multiple of each member's lr now; a member with lr 0 stays as it is."""
        lr = self.lr * lr_factor
        self._steps += (lr != 0).to(torch.float64)
        # Per member, shaped once per step for each rank (not per parameter: on a GPU every
        # small tensor operation is a kernel launch).
        self._now = _Columns(self, lr)
        stack = self._stack
        for i, w in enumerate(self._params):
            grad = w.grad
            assert grad is not None, "step() after backward()"
            cols = self._now.of(w)
            rate = self._now.rate(w, stack.lr_scale[i])
            regularized = stack.regularized[i]
            if regularized and self._before_update is not None:
                self._before_update(w, grad, self._scratch[i], cols, rate)
            if self._rule == "sgd":
                self._sgd(i, w, grad, rate, regularized)
            elif self._rule == "adam":
                self._adam(i, w, grad, rate, regularized)
            else:
                self._rmsprop(i, w, grad, rate, regularized)

    def _sgd(
        self, i: int, w: torch.Tensor, grad: torch.Tensor, rate: torch.Tensor, reg: bool
    ) -> None:
        direction = grad
        if self._momentum:
            buf = self._first[i]
            buf.mul_(self._momentum).add_(grad)
            direction = buf
            if self._nesterov:
                direction = torch.add(grad, buf, alpha=self._momentum, out=self._scratch[i])
        w.addcmul_(direction, rate, value=-1)
        if reg and self._proximal:
            cols = self._now.of(w)
            t = rate / (1 - self._momentum)
            scratch = self._scratch[i]
            _soft_threshold(w, t * cols.l1, out=scratch)
            torch.sub(w, scratch, out=scratch)
            torch.div(scratch, 1 + t * cols.l2x2, out=w)

    def _adam(
        self, i: int, w: torch.Tensor, grad: torch.Tensor, rate: torch.Tensor, reg: bool
    ) -> None:
        beta1, beta2 = self._betas
        m, v, d = self._first[i], self._second[i], self._scratch[i]
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        cols = self._now.of(w)
        correction1, correction2_sqrt = cols.correction1, cols.correction2_sqrt
        torch.sqrt(v, out=d)
        d.div_(correction2_sqrt).add_(self._eps)
        torch.div(m, d, out=d)
        w.addcmul_(d, rate / correction1, value=-1)
        if reg and self._proximal:
            # t = lr·c/D with D = √v + ε·c, c = √(1 − β₂ᵗ): the step Adam just took.
            torch.sqrt(v, out=d)
            d.add_(self._eps * correction2_sqrt)
            self._prox_scaled(i, w, d, rate * correction2_sqrt)

    def _rmsprop(
        self, i: int, w: torch.Tensor, grad: torch.Tensor, rate: torch.Tensor, reg: bool
    ) -> None:
        v, average = self._second[i], self._scratch[i]
        v.mul_(self._alpha).addcmul_(grad, grad, value=1 - self._alpha)
        torch.sqrt(v, out=average).add_(self._eps)
        if self._momentum:
            buf = self._first[i]
            buf.mul_(self._momentum).addcdiv_(grad, average)
            w.addcmul_(buf, rate, value=-1)
        else:
            torch.div(grad, average, out=average)
            w.addcmul_(average, rate, value=-1)
        if reg and self._proximal:
            torch.sqrt(v, out=average).add_(self._eps)
            self._prox_scaled(i, w, average, rate / (1 - self._momentum))

    def _prox_scaled(
        self, i: int, w: torch.Tensor, d: torch.Tensor, t_times_d: torch.Tensor
    ) -> None:
        """The prox with the per-coordinate step ``t = t_times_d / d``, computed as
        ``soft(w·d, λ₁·t·d)/(d + 2λ₂·t·d)`` (as the single-trial method does)."""
        u = self._scratch2[i]
        cols = self._now.of(w)
        torch.mul(w, d, out=u)
        _soft_threshold(u, cols.l1 * t_times_d, out=w)  # w: free till the end
        torch.sub(u, w, out=u)
        d.add_(cols.l2x2 * t_times_d)
        torch.div(u, d, out=w)


@dataclass(frozen=True)
class _Ranked:
    """A step's per-member values shaped for parameters of one rank: ``[K, 1, 1, …]``."""

    l1: torch.Tensor
    l2x2: torch.Tensor
    lr: torch.Tensor
    correction1: torch.Tensor
    correction2_sqrt: torch.Tensor


class _Columns:
    """One step's per-member values, made once per parameter rank (and lr multiple)."""

    def __init__(self, optimizer: PopulationOptimizer, lr: torch.Tensor) -> None:
        self._optimizer = optimizer
        self._lr = lr
        beta1, beta2 = optimizer._betas
        steps = optimizer._steps.clamp(min=1)  # an idle member's corrections do not matter
        dtype = lr.dtype
        self._c1 = (1 - beta1**steps).to(dtype)
        self._c2 = (1 - beta2**steps).sqrt().to(dtype)
        self._ranked: dict[int, _Ranked] = {}
        self._rates: dict[tuple[int, float], torch.Tensor] = {}

    def of(self, w: torch.Tensor) -> _Ranked:
        if w.ndim not in self._ranked:
            o, shape = self._optimizer, (-1, *[1] * (w.ndim - 1))
            self._ranked[w.ndim] = _Ranked(
                l1=o.l1.reshape(shape),
                l2x2=(2 * o.l2).reshape(shape),
                lr=self._lr.reshape(shape),
                correction1=self._c1.reshape(shape),
                correction2_sqrt=self._c2.reshape(shape),
            )
        return self._ranked[w.ndim]

    def rate(self, w: torch.Tensor, scale: float) -> torch.Tensor:
        """The member's lr times the parameter's lr multiple, shaped for ``w``."""
        key = (w.ndim, scale)
        if key not in self._rates:
            lr = self.of(w).lr
            self._rates[key] = lr if scale == 1.0 else lr * scale
        return self._rates[key]


def _soft_threshold(x: torch.Tensor, tau: torch.Tensor, *, out: torch.Tensor) -> None:
    """``out ← clamp(x, −τ, τ)``, so that ``x − out`` is ``sign x·max(|x| − τ, 0)``: the same
    numbers as ``softshrink`` (``x ∓ τ`` beyond ±τ, exactly 0 inside), with a per-member τ
    and no temporary (``out`` is a buffer other than ``x``)."""
    torch.clamp(x, min=-tau, max=tau, out=out)


_BeforeUpdate = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, _Ranked, torch.Tensor], None]


def _add_penalty_gradient(
    w: torch.Tensor, grad: torch.Tensor, scratch: torch.Tensor, cols: _Ranked, rate: torch.Tensor
) -> None:
    """Kernel "gradient": ``grad += λ₁·sign w + 2λ₂·w``, per member."""
    torch.sign(w, out=scratch)
    grad.addcmul_(scratch, cols.l1)
    grad.addcmul_(w, cols.l2x2)


def _shrink(
    w: torch.Tensor, grad: torch.Tensor, scratch: torch.Tensor, cols: _Ranked, rate: torch.Tensor
) -> None:
    """Kernel "decoupled": ``w ← w·(1 − lr·2λ₂) − lr·λ₁·sign w``, per member."""
    torch.sign(w, out=scratch)  # of w before the shrink, as the formula says
    w.mul_(1 - rate * cols.l2x2)
    w.addcmul_(scratch, rate * cols.l1, value=-1)


# Each population kernel of METHOD_TABLE: what it does before the optimizer's update (None:
# nothing) and whether it thresholds after it (inside each optimizer rule's own update).
_KERNELS: dict[str, tuple[_BeforeUpdate | None, bool]] = {
    "gradient": (_add_penalty_gradient, False),
    "decoupled": (_shrink, False),
    "proximal": (None, True),
}


def _kernel(row: MethodSpec) -> tuple[_BeforeUpdate | None, bool]:
    """The kernel ``row`` names; a method without one is refused, never trained unpenalized."""
    kernel = _KERNELS.get(row.population) if row.population is not None else None
    if kernel is None:
        raise ValueError(
            f"method {row.name!r} has no population kernel (METHOD_TABLE says "
            f"population={row.population!r}; worker/population knows "
            f"{', '.join(_KERNELS)}), so population trials cannot apply its penalty; run it "
            f"with execution.population: 1, or give it a kernel"
        )
    return kernel
