"""The abstraction every method implements, and the context it is attached with."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.utils.hooks import RemovableHandle


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """What a method needs to act on one optimizer.

    ``groups`` pairs each optimizer param group with the regularized parameters it holds, in the
    optimizer's order, so step-time methods read the group's *current* ``lr`` (schedulers work).
    ``scale`` multiplies λ for methods that act once per ``backward()``: ``1/k`` with ``k``
    gradient-accumulation micro-steps.
    """

    optimizer: torch.optim.Optimizer
    groups: list[tuple[dict[str, Any], list[torch.Tensor]]]
    scale: float


class BaseMethod(abc.ABC):
    """One way of applying ``R(w) = λ₁·Σ|w| + λ₂·Σw²``.

    Subclasses set ``name`` (their row of ``METHOD_TABLE`` says the rest: λ₁ support, class,
    cost); ``per_backward`` is True where the
    method acts once per ``backward()`` rather than once per optimizer step; ``adds_to_loss`` is
    True for the one method that works through ``Regularizer.penalize``.
    """

    name: ClassVar[str]
    per_backward: ClassVar[bool] = False
    adds_to_loss: ClassVar[bool] = False

    def __init__(self, *, l1: float, l2: float, params: list[torch.Tensor]) -> None:
        self.l1 = l1
        self.l2 = l2
        self.params = params

    def optimizer_weight_decay(self) -> float:
        """The ``weight_decay`` the regularized optimizer groups must carry."""
        return 0.0

    def check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:  # noqa: B027
        """Refuse an optimizer this method cannot work with (default: any works)."""

    @abc.abstractmethod
    def attach(self, attachment: Attachment) -> list[RemovableHandle]:
        """Install hooks; return their handles (removed by ``Regularizer.detach``)."""
