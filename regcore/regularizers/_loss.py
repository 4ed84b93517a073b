from __future__ import annotations

from torch.utils.hooks import RemovableHandle

from regcore.regularizers._base import Attachment, BaseMethod


class LossMethod(BaseMethod):
    """``R(w)`` added to the loss by ``Regularizer.penalize``; autograd takes its gradient.

    The most transparent method and the slowest (the penalty joins the graph: extra forward
    and backward work and parameter-sized temporaries). Acts once per ``backward()``.
    """

    name = "loss"
    per_backward = True
    adds_to_loss = True

    def attach(self, attachment: Attachment) -> list[RemovableHandle]:
        return []
