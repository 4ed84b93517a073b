from __future__ import annotations

import torch
from torch.utils.hooks import RemovableHandle

from regcore.regularizers._base import Attachment, BaseMethod
from regcore.regularizers._scratch import SharedScratch


class HookMethod(BaseMethod):
    """Per-parameter ``register_post_accumulate_grad_hook`` adding ``λ₁·sign w + 2λ₂·w``.

    Not the source article's module full-backward hook, which fires when the gradient of the
    module's *inputs* is ready: before the first layer's ``.grad`` exists (``+=`` on None, or the
    term silently dropped), twice for a layer used twice, and breaking ``ReLU(inplace=True)``.
    A post-accumulate hook fires once the parameter's gradient is complete, in place, with no
    parameter-sized allocation (one shared scratch buffer). Acts once per ``backward()``.
    """

    name = "hook"
    per_backward = True

    def attach(self, attachment: Attachment) -> list[RemovableHandle]:
        l1 = self.l1 * attachment.scale
        l2x2 = 2.0 * self.l2 * attachment.scale
        scratch = SharedScratch()

        def add_penalty_grad(p: torch.Tensor) -> None:
            grad = p.grad
            if grad is None:  # pragma: no cover - autograd calls the hook only with a grad
                return
            with torch.no_grad():
                if l1:
                    sign = scratch.like(p)
                    torch.sign(p, out=sign)
                    grad.add_(sign, alpha=l1)
                if l2x2:
                    grad.add_(p, alpha=l2x2)

        return [
            p.register_post_accumulate_grad_hook(add_penalty_grad)  # type: ignore[no-untyped-call]
            for p in self.params
        ]
