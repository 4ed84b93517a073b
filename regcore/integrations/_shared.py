"""What both trainers' callbacks share: one Regularizer per optimizer, the penalty gradient
taken out around a trainer's clip, and a trial's metrics found among the trainer's.

Trainer-free (torch and regcore only), so it is tested with either trainer installed.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from regcore.regularizers import Regularizer, method_spec, select_parameters
from regcore.regularizers._ops import add_, add_penalty_grad_, before_update
from regcore.regularizers._scratch import ScratchBuffers
from regcore.regularizers._select import Exclude, Only

# The Regularizers a callback made for a model, so that a TrialCallback in the same trainer
# can hand them to its trial (which records their sparsity and norms when it ends).
_MADE_FOR: weakref.WeakKeyDictionary[nn.Module, list[Regularizer]] = weakref.WeakKeyDictionary()


def regularizers_for(model: nn.Module) -> list[Regularizer]:
    """The Regularizers a ``Regularize`` callback attached for ``model`` (empty if none)."""
    return list(_MADE_FOR.get(model, []))


def torch_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside a trainer's wrappers (accelerate's, Lightning's)."""
    seen = 0
    while not type(optimizer).__module__.startswith("torch.") and seen < 8:
        inner = getattr(optimizer, "optimizer", None)
        if not isinstance(inner, torch.optim.Optimizer):
            break
        optimizer, seen = inner, seen + 1
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"Regularize needs the trainer's optimizer to be a torch.optim.Optimizer (or to "
            f"wrap one as .optimizer), but got {type(optimizer).__name__}"
        )
    return optimizer


class Regularizers:
    """``R(w)`` over ``model``'s chosen parameters, one :class:`Regularizer` per optimizer.

    Each optimizer gets a Regularizer over the chosen parameters it holds, so every method,
    the per-parameter ``hook`` included, acts once per parameter however many optimizers a
    trainer steps. ``only``/``exclude`` are checked against the whole model first (a pattern
    that selects nothing is refused there, with the model's names).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        l1: float,
        l2: float,
        method: str,
        only: Only,
        exclude: Exclude,
        accumulation_steps: int,
    ) -> None:
        method_spec(method)  # an unknown method is refused before any training
        self.model = model
        chosen, _ = select_parameters(model, exclude, only=only)
        self._chosen = {id(p) for _, p in chosen}
        self._options = {"l1": l1, "l2": l2, "method": method}
        self.accumulation_steps = accumulation_steps
        self.regularizers: list[Regularizer] = []
        self.optimizers: list[torch.optim.Optimizer] = []  # each regularizer's, in order

    def attach(
        self, optimizers: Iterable[Any], *, scaler: torch.amp.GradScaler | None = None
    ) -> list[Regularizer]:
        for optimizer in optimizers:
            inner = torch_optimizer(optimizer)
            mine = {id(p) for g in inner.param_groups for p in g["params"]} & self._chosen
            if not mine:
                continue

            def outside(name: str, param: nn.Parameter, mine: set[int] = mine) -> bool:
                del name
                return id(param) not in mine

            reg = Regularizer(
                self.model,
                **self._options,  # type: ignore[arg-type]
                exclude=outside,
                accumulation_steps=self.accumulation_steps,
            )
            reg.attach(inner, scaler=scaler)
            self.regularizers.append(reg)
            self.optimizers.append(inner)
        _MADE_FOR.setdefault(self.model, []).extend(self.regularizers)
        return self.regularizers

    def penalty(self) -> torch.Tensor:
        """``R(w)`` over every chosen parameter, differentiable."""
        total: torch.Tensor | None = None
        for reg in self.regularizers:
            total = reg.penalty() if total is None else total + reg.penalty()
        return torch.zeros(()) if total is None else total

    def detach(self) -> None:
        for reg in self.regularizers:
            reg.detach()
        made = _MADE_FOR.get(self.model, [])
        _MADE_FOR[self.model] = [r for r in made if r not in self.regularizers]
        self.regularizers = []
        self.optimizers = []


class ClipsDataOnly:
    """Keeps a trainer's clip off the penalty gradient that ``loss`` and ``hook`` put into
    ``.grad`` during backward, as :meth:`Regularizer.clip_grad_norm_` does in a plain loop.

    :meth:`take_out` (called right before the trainer clips) subtracts ``λ₁·sign w + 2λ₂·w``
    from the gradients; an optimizer step pre-hook adds it back once the clip is done, before
    the update. The clipped gradient is ``c·(g − p) + p``: the plain loop's convention.
    """

    def __init__(self, regularizers: Regularizers) -> None:
        self._regs = list(regularizers.regularizers)
        self._scratch = ScratchBuffers()
        self._out: list[tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]] = []
        self._handles: list[RemovableHandle] = [
            optimizer.register_step_pre_hook(before_update(self._put_back))
            for optimizer in regularizers.optimizers
        ]

    @torch.no_grad()
    def take_out(self) -> None:
        # What a skipped step (GradScaler found inf) never put back went with its gradients.
        self._out = []
        for index, reg in enumerate(self._regs):
            live = [p for p in reg.parameters if p.grad is not None]
            grads = [p.grad for p in live if p.grad is not None]
            signs = self._scratch.like(live, slot=index) if reg.l1 else []
            add_penalty_grad_(grads, live, signs, l1=-reg.l1, l2x2=-2.0 * reg.l2)
            self._out.append((grads, live, signs))

    @torch.no_grad()
    def _put_back(self) -> None:
        for reg, (grads, live, signs) in zip(self._regs, self._out, strict=True):
            if reg.l1:
                add_(grads, signs, reg.l1)
            if reg.l2:
                add_(grads, live, 2.0 * reg.l2)
        self._out = []

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def trial_metrics(
    logged: Mapping[str, Any], names: Iterable[str], rename: Mapping[str, str] | None
) -> dict[str, float]:
    """The trial's metrics ``names`` read from what the trainer logged.

    Each name is looked up as ``rename[name]`` if given, else as itself, else with the
    trainer's evaluation prefix (``eval_loss`` for ``loss`` or ``val_loss``, as HF logs it).
    Names the trainer did not log are left out; values that are not finite are kept (the
    trial decides what a NaN means).
    """
    rename = rename or {}
    found: dict[str, float] = {}
    for name in names:
        candidates = [rename[name]] if name in rename else _candidates(name)
        for key in candidates:
            if key in logged:
                found[name] = _number(logged[key])
                break
    return found


def _candidates(name: str) -> list[str]:
    keys = [name, f"eval_{name}"]
    if name.startswith("val_"):
        keys.append(f"eval_{name[4:]}")
    return keys


def _number(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().double().item())
    return float(value)
