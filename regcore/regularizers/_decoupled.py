from __future__ import annotations

import torch
from torch.utils.hooks import RemovableHandle

from regcore.regularizers._base import Attachment, BaseMethod
from regcore.regularizers._ops import add_, before_update, mul_, sign_into
from regcore.regularizers._scratch import ScratchBuffers


class DecoupledMethod(BaseMethod):
    """Before the update, ``p ← p − lr·(λ₁·sign p + 2λ₂·p)`` with the group's current lr.

    AdamW-like: the shrinkage bypasses the optimizer's preconditioner, so with Adam it is a
    different regularizer from the penalty methods (with λ₁ = 0 it *is* ``AdamW(weight_decay=
    2λ₂)``); with plain SGD (no momentum) it equals them. Reads ``lr`` at every step, so
    schedulers work. Runs inside the step, once its gradients exist (after the closure of
    ``opt.step(closure)``), as AdamW decays.
    """

    name = "decoupled"

    def __init__(self, *, l1: float, l2: float, params: list[torch.Tensor]) -> None:
        super().__init__(l1=l1, l2=l2, params=params)
        self._scratch = ScratchBuffers()

    def attach(self, attachment: Attachment) -> list[RemovableHandle]:
        groups = attachment.groups
        l1, l2x2 = self.l1, 2.0 * self.l2

        @torch.no_grad()
        def shrink() -> None:
            for group, params in groups:
                # As AdamW: only parameters this step updates are decayed.
                live = [p for p in params if p.grad is not None]
                if not live:
                    continue
                lr = float(group["lr"])
                if l1:
                    signs = self._scratch.like(live)
                    sign_into(signs, live)  # of p before the shrink, as the formula says
                if l2x2:
                    # The same scalar AdamW multiplies by, so λ₁ = 0 matches it bit for bit.
                    mul_(live, 1.0 - lr * l2x2)
                if l1:
                    add_(live, signs, -lr * l1)

        hook = before_update(shrink)
        return [attachment.optimizer.register_step_pre_hook(hook)]
