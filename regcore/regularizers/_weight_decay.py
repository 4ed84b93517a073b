from __future__ import annotations

import torch
from torch.utils.hooks import RemovableHandle

from regcore.regularizers._base import Attachment, BaseMethod


class WeightDecayMethod(BaseMethod):
    """L2 through the optimizer's own coupled decay: ``weight_decay = 2·λ₂``.

    torch.optim's SGD, Adam and RMSprop add ``weight_decay·w`` to the gradient, so ``2·λ₂``
    is exactly the gradient of ``λ₂·Σw²`` (the source article's "2·weight_decay·w" is off by
    that factor). The cheapest L2 there is; it cannot express L1.
    """

    name = "weight_decay"

    def optimizer_weight_decay(self) -> float:
        return 2.0 * self.l2

    def check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        decoupled = isinstance(optimizer, torch.optim.AdamW) or any(
            g.get("decoupled_weight_decay", False) for g in optimizer.param_groups
        )
        if decoupled and self.l2 > 0:
            raise ValueError(
                f"method='weight_decay' means coupled decay (the gradient of λ₂·Σw²), but "
                f"{type(optimizer).__name__} decays decoupled from the gradient; use "
                f"torch.optim.Adam, or method='decoupled' for AdamW-style decay"
            )

    def attach(self, attachment: Attachment) -> list[RemovableHandle]:
        # Nothing to hook: the optimizer's groups carry the decay (Regularizer.param_groups).
        return []
