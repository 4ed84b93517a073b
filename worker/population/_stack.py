"""K copies of one model as one flat parameter tensor: the population's shared state.

Every member's parameters are a row of ``flat`` (shape ``[K, P]``, one dtype); the module's
parameters are views of it (``view(k)``-free: :meth:`Stack.params` hands ``functional_call``
``[K, *shape]`` views of the columns), so the backward pass leaves every member's gradient in
one ``[K, P]`` tensor and an optimizer step is a handful of kernels over it, whatever the
number of parameter tensors. Buffers (BatchNorm's running statistics) are stacked per name.
``mask`` marks the regularized coordinates, ``lr_scale`` each coordinate's lr multiplier.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from regcore.regularizers import select_parameters
from worker.optim import lr_multipliers


@dataclass(frozen=True)
class _Slot:
    name: str
    offset: int
    shape: torch.Size

    @property
    def size(self) -> int:
        return self.shape.numel()


class Stack:
    """``k`` members of ``model`` (all starting from its weights), on ``model``'s device."""

    def __init__(
        self,
        model: nn.Module,
        k: int,
        *,
        exclude: list[str] | None = None,
        only: list[str] | None = None,
        lr_mult: Mapping[str, float] | None = None,
    ) -> None:
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        dtypes = {p.dtype for _, p in trainable}
        if len(dtypes) != 1:
            raise ValueError(
                f"population trials need every trainable parameter in one dtype, but the model "
                f"has {sorted(str(d) for d in dtypes)}; cast the model, or set population: 1"
            )
        self.model = model
        self.k = k
        self.slots: list[_Slot] = []
        offset = 0
        for name, p in trainable:
            self.slots.append(_Slot(name, offset, p.shape))
            offset += p.numel()
        first = trainable[0][1]
        initial = torch.cat([p.detach().reshape(-1) for _, p in trainable])
        self.initial = initial.clone()
        self.flat = initial.repeat(k, 1).requires_grad_(True)  # [K, P], the leaf
        regularized = {name for name, _ in select_parameters(model, exclude, only=only)[0]}
        self.mask = self._per_coordinate(lambda n: 1.0 if n in regularized else 0.0, first)
        self.regularized = self.mask.bool()
        multipliers = lr_multipliers(model, lr_mult or {})
        self.lr_scale = self._per_coordinate(lambda n: multipliers[n], first)
        self.initial_buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
        self.buffers = {
            n: b.detach().unsqueeze(0).repeat(k, *[1] * b.ndim) for n, b in model.named_buffers()
        }

    def _per_coordinate(self, value: object, like: torch.Tensor) -> torch.Tensor:
        assert callable(value)
        parts = [torch.full((s.size,), float(value(s.name)), dtype=like.dtype) for s in self.slots]
        return torch.cat(parts).to(like.device).unsqueeze(0)  # [1, P], broadcast over members

    def params(self) -> dict[str, torch.Tensor]:
        """``[K, *shape]`` views of ``flat``'s columns (autograd sends their gradients to it).
        Frozen parameters are not among them: ``functional_call`` takes the module's own, one
        for every member."""
        return {
            s.name: self.flat[:, s.offset : s.offset + s.size].view(self.k, *s.shape)
            for s in self.slots
        }

    def reset(self, member: int) -> None:
        """A new member in slot ``member``: back to the initial weights and buffers."""
        with torch.no_grad():
            self.flat[member].copy_(self.initial)
            for name, buffer in self.buffers.items():
                buffer[member].copy_(self.initial_buffers[name])

    def member_module(self, member: int, module: nn.Module | None = None) -> nn.Module:
        """A module holding member ``member``'s weights and buffers (a copy of the model,
        made once per slot by the caller and refreshed here)."""
        target = module if module is not None else copy.deepcopy(self.model)
        with torch.no_grad():
            named = dict(target.named_parameters())
            for s in self.slots:
                named[s.name].copy_(self.flat[member, s.offset : s.offset + s.size].view(s.shape))
            for name, buffer in target.named_buffers():
                buffer.copy_(self.buffers[name][member])
        return target
