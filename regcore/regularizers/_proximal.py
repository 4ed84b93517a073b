from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch.utils.hooks import RemovableHandle

from regcore.regularizers._base import Attachment, BaseMethod
from regcore.regularizers._scratch import ScratchBuffers

_Kind = Literal["sgd", "adam", "rmsprop"]


def _optimizer_kind(optimizer: torch.optim.Optimizer) -> _Kind:
    if isinstance(optimizer, torch.optim.SGD):
        return "sgd"
    if isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW):
        return "adam"
    if isinstance(optimizer, torch.optim.RMSprop):
        return "rmsprop"
    raise ValueError(
        f"method='proximal' needs the optimizer's step size to threshold with, and knows it for "
        f"SGD, Adam, AdamW and RMSprop, but got {type(optimizer).__name__}; use one of those, "
        f"or method='fused' (any optimizer, no exact zeros)"
    )


def _floats(values: list[Any]) -> list[float]:
    """Python floats from numbers or 0-d tensors, with at most one device sync."""
    if values and isinstance(values[0], torch.Tensor) and values[0].device.type != "cpu":
        return [float(v) for v in torch.stack(values).tolist()]
    return [float(v) for v in values]


class ProximalMethod(BaseMethod):
    """After the step, the proximal operator of ``R``: exact zeros, as Lasso has them.

    ``p ← sign p·max(|p| − t·λ₁, 0) / (1 + 2t·λ₂)`` where ``t`` is the step the optimizer just
    took: ``lr`` for SGD, the per-coordinate ``lr/(√v̂ + ε)`` for Adam (ProxGen, Yun, Lozano &
    Yang, NeurIPS 2021) and ``lr/(√v + ε)`` for RMSprop. With Adam the AdamW-like threshold
    ``lr·λ₁`` would not reach the Lasso solution. Soft-thresholding is computed as
    ``p − clamp(p, −τ, τ)``, which is exactly 0 wherever ``|p| ≤ τ``. Runs once per step.
    """

    name = "proximal"

    def __init__(self, *, l1: float, l2: float, params: list[torch.Tensor]) -> None:
        super().__init__(l1=l1, l2=l2, params=params)
        self._scratch = ScratchBuffers()

    def check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        _optimizer_kind(optimizer)

    def attach(self, attachment: Attachment) -> list[RemovableHandle]:
        kind = _optimizer_kind(attachment.optimizer)
        groups = attachment.groups

        def after_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            with torch.no_grad():
                for group, params in groups:
                    # Parameters the optimizer did not step (no gradient) are not thresholded.
                    live = [p for p in params if p.grad is not None]
                    if not live:
                        continue
                    lr = float(group["lr"])
                    if kind == "sgd":
                        self._prox_scalar(live, lr)
                    else:
                        steps = self._step_sizes(kind, optimizer, group, live, lr)
                        self._prox_per_coordinate(live, steps)

        return [attachment.optimizer.register_step_post_hook(after_step)]

    def _prox_scalar(self, params: list[torch.Tensor], t: float) -> None:
        if self.l1:
            tau = t * self.l1
            clipped = self._scratch.like(params)
            torch._foreach_copy_(clipped, params)
            torch._foreach_clamp_max_(clipped, tau)
            torch._foreach_clamp_min_(clipped, -tau)
            torch._foreach_sub_(params, clipped)
        if self.l2:
            torch._foreach_div_(params, 1.0 + 2.0 * t * self.l2)

    def _prox_per_coordinate(self, params: list[torch.Tensor], t: list[torch.Tensor]) -> None:
        # t is scratch memory: it is overwritten on the way.
        if self.l1:
            tau = t
            torch._foreach_mul_(tau, self.l1)
            clipped = self._scratch.like(params)
            torch._foreach_copy_(clipped, params)
            torch._foreach_minimum_(clipped, tau)
            torch._foreach_neg_(tau)
            torch._foreach_maximum_(clipped, tau)
            torch._foreach_sub_(params, clipped)
            if self.l2:
                torch._foreach_mul_(tau, -2.0 * self.l2 / self.l1)  # −λ₁t → 2λ₂t
                torch._foreach_add_(tau, 1.0)
                torch._foreach_div_(params, tau)
        elif self.l2:
            torch._foreach_mul_(t, 2.0 * self.l2)
            torch._foreach_add_(t, 1.0)
            torch._foreach_div_(params, t)

    def _step_sizes(
        self,
        kind: _Kind,
        optimizer: torch.optim.Optimizer,
        group: dict[str, Any],
        params: list[torch.Tensor],
        lr: float,
    ) -> list[torch.Tensor]:
        """The per-coordinate step ``lr / denom`` of the update just taken, as Adam/RMSprop
        compute ``denom``, written into scratch buffers."""
        states = [optimizer.state[p] for p in params]
        t = self._scratch.like(params, slot=1)
        eps = float(group["eps"])
        if kind == "adam":
            key = "max_exp_avg_sq" if group.get("amsgrad") else "exp_avg_sq"
            torch._foreach_copy_(t, [s[key] for s in states])
            torch._foreach_sqrt_(t)
            beta2 = float(group["betas"][1])
            steps = _floats([s["step"] for s in states])
            torch._foreach_div_(t, [math.sqrt(1.0 - beta2**step) for step in steps])
        else:
            torch._foreach_copy_(t, [s["square_avg"] for s in states])
            if group.get("centered"):
                torch._foreach_addcmul_(
                    t, [s["grad_avg"] for s in states], [s["grad_avg"] for s in states], value=-1
                )
            torch._foreach_sqrt_(t)
        torch._foreach_add_(t, eps)
        torch._foreach_reciprocal_(t)
        torch._foreach_mul_(t, lr)
        return t
