from __future__ import annotations

from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from regcore.regularizers._base import Attachment, BaseMethod
from regcore.regularizers._scratch import ScratchBuffers


class DecoupledMethod(BaseMethod):
    """Before the update, ``p ← p − lr·(λ₁·sign p + 2λ₂·p)`` with the group's current lr.

    AdamW-like: the shrinkage bypasses the optimizer's preconditioner, so with Adam it is a
    different regularizer from the penalty methods (with λ₁ = 0 it *is* ``AdamW(weight_decay=
    2λ₂)``); with plain SGD (no momentum) it equals them. Reads ``lr`` at every step, so
    schedulers work.
    """

    name = "decoupled"

    def __init__(self, *, l1: float, l2: float, params: list[torch.Tensor]) -> None:
        super().__init__(l1=l1, l2=l2, params=params)
        self._scratch = ScratchBuffers()

    def attach(self, attachment: Attachment) -> list[RemovableHandle]:
        groups = attachment.groups
        l1, l2x2 = self.l1, 2.0 * self.l2

        def before_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            with torch.no_grad():
                for group, params in groups:
                    # As AdamW: only parameters this step updates are decayed.
                    live = [p for p in params if p.grad is not None]
                    if not live:
                        continue
                    lr = float(group["lr"])
                    if l1:
                        signs = self._scratch.like(live)
                        torch._foreach_copy_(signs, live)
                        torch._foreach_sign_(signs)  # of p before the shrink, as the formula says
                    if l2x2:
                        # The same scalar AdamW multiplies by, so λ₁ = 0 matches it bit for bit.
                        torch._foreach_mul_(live, 1.0 - lr * l2x2)
                    if l1:
                        torch._foreach_add_(live, signs, alpha=-lr * l1)

        return [attachment.optimizer.register_step_pre_hook(before_step)]
