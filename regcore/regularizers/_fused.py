from __future__ import annotations

from typing import Any

import torch
from torch.utils.hooks import RemovableHandle

from regcore.regularizers._base import Attachment, BaseMethod
from regcore.regularizers._scratch import ScratchBuffers


class FusedMethod(BaseMethod):
    """One multi-tensor pass adding ``λ₁·sign w + 2λ₂·w`` to every gradient before the step.

    Runs as the optimizer's step pre-hook, so it sees gradients once per step: right under
    gradient accumulation, and after ``GradScaler.unscale_`` under mixed precision (a step the
    scaler skips is skipped here too). ``torch._foreach_*`` kernels over all regularized
    tensors, writing ``sign w`` into persistent scratch buffers: no allocation per step.
    """

    name = "fused"

    def __init__(self, *, l1: float, l2: float, params: list[torch.Tensor]) -> None:
        super().__init__(l1=l1, l2=l2, params=params)
        self._scratch = ScratchBuffers()

    def attach(self, attachment: Attachment) -> list[RemovableHandle]:
        params = [p for _, group_params in attachment.groups for p in group_params]
        l1, l2x2 = self.l1, 2.0 * self.l2

        def before_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            live = [p for p in params if p.grad is not None]
            if not live:
                return
            grads = [p.grad for p in live if p.grad is not None]
            with torch.no_grad():
                if l1:
                    signs = self._scratch.like(live)
                    torch._foreach_copy_(signs, live)
                    torch._foreach_sign_(signs)
                    torch._foreach_add_(grads, signs, alpha=l1)
                if l2x2:
                    torch._foreach_add_(grads, live, alpha=l2x2)

        return [attachment.optimizer.register_step_pre_hook(before_step)]
