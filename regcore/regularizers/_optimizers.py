"""The optimizers regsweep knows, in one table: what a spec calls them, their torch class, the
options a spec may set, and the step each takes (which ``method='proximal'`` thresholds with).

The spec (``optimizer.name`` and its option rules), the worker's training loop and the
proximal method read this table; adding an optimizer is one row (plus, for an option no row
had before, a field of that name in the spec and the loop's config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch

# The step size t an optimizer just took, per rule: "sgd" lr; "adam" lr/(√v̂ + ε) with Adam's
# bias-corrected second moment; "rmsprop" lr/(√v + ε). Momentum scales the first and last.
StepRule = Literal["sgd", "adam", "rmsprop"]


@dataclass(frozen=True, kw_only=True)
class OptimizerKind:
    """One optimizer: ``name`` as a spec writes it, ``torch_class`` (subclasses match too),
    ``options``: the keyword arguments a spec may set besides ``lr`` (``"momentum"``),
    ``step_rule``: its step size (see :data:`StepRule`)."""

    name: str
    torch_class: type[torch.optim.Optimizer]
    options: tuple[str, ...]
    step_rule: StepRule


KNOWN_OPTIMIZERS: tuple[OptimizerKind, ...] = (
    OptimizerKind(
        name="sgd",
        torch_class=torch.optim.SGD,
        options=("momentum", "nesterov"),
        step_rule="sgd",
    ),
    OptimizerKind(name="adam", torch_class=torch.optim.Adam, options=("betas",), step_rule="adam"),
    # Decoupled decay (weight_decay=0 here: the Regularizer's groups set it), so with method
    # weight_decay a spec is refused: that method means coupled decay.
    OptimizerKind(
        name="adamw", torch_class=torch.optim.AdamW, options=("betas",), step_rule="adam"
    ),
    OptimizerKind(
        name="rmsprop", torch_class=torch.optim.RMSprop, options=("momentum",), step_rule="rmsprop"
    ),
)

# By the name a spec writes, in the table's order.
OPTIMIZERS: dict[str, OptimizerKind] = {k.name: k for k in KNOWN_OPTIMIZERS}

# mypy cannot read a Literal built at run time (pydantic can, for the spec's field): str for it.
if TYPE_CHECKING:
    OptimizerName = str
else:
    OptimizerName = Literal[tuple(OPTIMIZERS)]


def optimizers_taking(option: str) -> list[str]:
    """The names of the sweep optimizers that take ``option`` (``"momentum"``)."""
    return [k.name for k in OPTIMIZERS.values() if option in k.options]


def step_rule(optimizer: torch.optim.Optimizer) -> StepRule | None:
    """How ``optimizer`` sizes its steps, or None for an optimizer not in the table."""
    for kind in KNOWN_OPTIMIZERS:
        if isinstance(optimizer, kind.torch_class):
            return kind.step_rule
    return None
