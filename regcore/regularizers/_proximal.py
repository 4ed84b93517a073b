from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from regcore.regularizers._base import Attachment, BaseMethod
from regcore.regularizers._ops import div_
from regcore.regularizers._optimizers import KNOWN_OPTIMIZERS, StepRule, step_rule
from regcore.regularizers._scratch import ScratchBuffers


def _optimizer_kind(optimizer: torch.optim.Optimizer) -> StepRule:
    rule = step_rule(optimizer)
    if rule is None:
        known = [k.torch_class.__name__ for k in KNOWN_OPTIMIZERS]
        raise ValueError(
            f"method='proximal' needs the optimizer's step size to threshold with, and knows it "
            f"for {', '.join(known[:-1])} and {known[-1]}, but got {type(optimizer).__name__}; "
            f"use one of those, or method='fused' (any optimizer, no exact zeros)"
        )
    return rule


def _momentum_scale(kind: StepRule, group: dict[str, Any]) -> float:
    """How much longer than ``lr`` the step is once momentum has built up.

    With torch's heavy-ball momentum ``buf ← μ·buf + (1 − d)·g`` tends to ``(1 − d)/(1 − μ)·g``,
    so SGD moves ``lr·(1 − d)/(1 − μ)`` along the gradient (Nesterov too: it needs ``d = 0``) and
    RMSprop ``lr/((√v + ε)(1 − μ))``. Thresholding with the bare ``lr`` would reach the fixed
    point of ``λ·(1 − μ)/(1 − d)``, not of ``λ``. Adam's ``m̂`` is bias-corrected: no factor.
    """
    if kind == "adam":
        return 1.0
    momentum = float(group.get("momentum", 0.0))
    if not momentum:
        return 1.0
    if not 0.0 < momentum < 1.0:
        raise ValueError(
            f"method='proximal' thresholds with the step momentum builds up to, "
            f"lr/(1 - momentum), which needs 0 <= momentum < 1, but got {momentum=}"
        )
    dampening = float(group.get("dampening", 0.0)) if kind == "sgd" else 0.0
    return (1.0 - dampening) / (1.0 - momentum)


def _floats(values: list[Any]) -> list[float]:
    """Python floats from numbers or 0-d tensors, with at most one device sync."""
    if values and isinstance(values[0], torch.Tensor) and values[0].device.type != "cpu":
        return [float(v) for v in torch.stack(values).tolist()]
    return [float(v) for v in values]


class ProximalMethod(BaseMethod):
    """After the step, the proximal operator of ``R``: exact zeros, as Lasso has them.

    ``p ← sign p·max(|p| − t·λ₁, 0) / (1 + 2t·λ₂)`` where ``t`` is the step the optimizer just
    took: ``lr`` for SGD, the per-coordinate ``lr/(√v̂ + ε)`` for Adam (ProxGen, Yun, Lozano &
    Yang, NeurIPS 2021) and ``lr/(√v + ε)`` for RMSprop; with SGD's or RMSprop's momentum ``μ``
    (dampening ``d``) times ``(1 − d)/(1 − μ)``, the step momentum builds up to. So the
    fixed point is the Lasso / elastic-net solution for ``λ₁, λ₂`` with any of them. With Adam
    the AdamW-like threshold ``lr·λ₁`` would not reach the Lasso solution. Soft-thresholding
    (``softshrink``, in place) is exactly 0 wherever ``|p| ≤ τ``. Runs once per step, on
    persistent scratch buffers.
    """

    name = "proximal"

    def __init__(self, *, l1: float, l2: float, params: list[torch.Tensor]) -> None:
        super().__init__(l1=l1, l2=l2, params=params)
        self._scratch = ScratchBuffers()

    def check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        kind = _optimizer_kind(optimizer)
        for group in optimizer.param_groups:
            _momentum_scale(kind, group)

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
                    lr = float(group["lr"]) * _momentum_scale(kind, group)
                    if kind == "sgd":
                        self._prox_scalar(live, lr)
                    else:
                        self._prox_per_coordinate(kind, optimizer.state, group, live, lr)

        return [attachment.optimizer.register_step_post_hook(after_step)]

    def _prox_scalar(self, params: list[torch.Tensor], t: float) -> None:
        if self.l1:
            for p in params:
                _soft_threshold_(p, t * self.l1)
        if self.l2:
            div_(params, 1.0 + 2.0 * t * self.l2)

    def _prox_per_coordinate(
        self,
        kind: StepRule,
        state: dict[torch.Tensor, Any],
        group: dict[str, Any],
        params: list[torch.Tensor],
        lr: float,
    ) -> None:
        """The prox with the per-coordinate step ``t = lr / d`` of the update just taken.

        Adam's denominator is ``d = √v/c + ε`` with ``c = √(1 − β₂ᵏ)``; RMSprop's ``d = √v + ε``
        (``c = 1``). With ``D = c·d = √v + ε·c`` > 0, ``t = lr·c/D`` and the prox becomes
        ``soft(p·D, λ₁·lr·c) / (D + 2λ₂·lr·c)``: a scalar threshold and six passes over memory,
        instead of materializing ``t`` and thresholding with a tensor.
        """
        eps = float(group["eps"])
        if kind == "adam":
            key = "max_exp_avg_sq" if group.get("amsgrad") else "exp_avg_sq"
            beta2 = float(group["betas"][1])
            steps = _floats([state[p]["step"] for p in params])
            corrections = [math.sqrt(1.0 - beta2**step) for step in steps]
        else:
            key = "square_avg"
            corrections = [1.0] * len(params)
        scaled_params = self._scratch.like(params)
        denominators = self._scratch.like(params, slot=1)
        for p, u, d, c in zip(params, scaled_params, denominators, corrections, strict=True):
            s = state[p]
            if kind == "rmsprop" and group.get("centered"):
                torch.addcmul(s[key], s["grad_avg"], s["grad_avg"], value=-1, out=d)
                d.sqrt_()
            else:
                torch.sqrt(s[key], out=d)
            d.add_(eps * c)
            torch.mul(p, d, out=u)
            if self.l1:
                _soft_threshold_(u, self.l1 * lr * c)
            if self.l2:
                d.add_(2.0 * self.l2 * lr * c)
            torch.div(u, d, out=p)


def _soft_threshold_(x: torch.Tensor, tau: float) -> None:
    """``x ← sign x·max(|x| − τ, 0)`` in place: exactly 0 wherever ``|x| <= τ``."""
    # softshrink's out= variant writes in place without a temporary; F.softshrink allocates.
    torch._C._nn.softshrink(x, tau, out=x)  # type: ignore[call-arg]
