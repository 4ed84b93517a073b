from __future__ import annotations

import torch
from torch.utils.hooks import RemovableHandle

from regcore.regularizers._base import Attachment, BaseMethod
from regcore.regularizers._ops import add_penalty_grad_, before_update
from regcore.regularizers._scratch import ScratchBuffers


class FusedMethod(BaseMethod):
    """One pass adding ``λ₁·sign w + 2λ₂·w`` to every gradient, inside the optimizer's step.

    Runs in the step, after the gradients exist and before the update (after the closure of
    ``opt.step(closure)``, as Lightning calls it), so it sees gradients once per step: right
    under gradient accumulation, after ``GradScaler.unscale_`` under mixed precision (a step
    the scaler skips is skipped here too) and after any clipping, which therefore clips the
    data gradient only. Multi-tensor kernels on accelerators, in-place per-tensor kernels on
    the CPU (``_ops``), ``sign w`` in persistent scratch buffers: no allocation per step.
    """

    name = "fused"

    def __init__(self, *, l1: float, l2: float, params: list[torch.Tensor]) -> None:
        super().__init__(l1=l1, l2=l2, params=params)
        self._scratch = ScratchBuffers()

    def attach(self, attachment: Attachment) -> list[RemovableHandle]:
        params = [p for _, group_params in attachment.groups for p in group_params]
        l1, l2x2 = self.l1, 2.0 * self.l2

        @torch.no_grad()
        def add_penalty() -> None:
            live = [p for p in params if p.grad is not None]
            if not live:
                return
            grads = [p.grad for p in live if p.grad is not None]
            signs = self._scratch.like(live) if l1 else []
            add_penalty_grad_(grads, live, signs, l1=l1, l2x2=l2x2)

        hook = before_update(add_penalty)
        return [attachment.optimizer.register_step_pre_hook(hook)]
