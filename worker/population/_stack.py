"""K copies of one model, stacked: the population's shared state.

Each trainable parameter becomes one leaf of shape ``[K, *shape]`` (row ``k`` is member
``k``'s), which ``functional_call`` under ``vmap`` trains for all members at once; buffers
(BatchNorm's running statistics) are stacked the same way. Per parameter the stack also
knows whether it is regularized and its lr multiplier.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from regcore.regularizers import select_parameters
from regcore.worker.optim import lr_multipliers


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
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.model = model
        self.k = k
        regularized = {name for name, _ in select_parameters(model, exclude, only=only)[0]}
        multipliers = lr_multipliers(model, lr_mult or {})
        self.names = list(trainable)
        self.initial = {n: p.detach().clone() for n, p in trainable.items()}
        self.params = {
            n: p.detach().unsqueeze(0).repeat(k, *[1] * p.ndim).requires_grad_(True)
            for n, p in trainable.items()
        }
        self.regularized = [n in regularized for n in self.names]
        self.lr_scale = [multipliers[n] for n in self.names]
        self.initial_buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
        self.buffers = {
            n: b.detach().unsqueeze(0).repeat(k, *[1] * b.ndim) for n, b in model.named_buffers()
        }

    def leaves(self) -> list[torch.Tensor]:
        return [self.params[n] for n in self.names]

    def reset(self, member: int) -> None:
        """A new member in slot ``member``: back to the initial weights and buffers."""
        with torch.no_grad():
            for name, initial in self.initial.items():
                self.params[name][member].copy_(initial)
            for name, buffer in self.buffers.items():
                buffer[member].copy_(self.initial_buffers[name])

    @torch.no_grad()
    def regularization_metrics(self) -> dict[str, list[float]]:
        """Every member's sparsity, ``|w| ≤ 1e-3`` sparsity, L1 and L2 norms of its
        regularized weights (what ``regcore.regularizers`` measures for one model), each a
        list by member, computed on the device and brought back once."""
        weights = [
            self.params[n].detach().reshape(self.k, -1)
            for n, on in zip(self.names, self.regularized, strict=True)
            if on
        ]
        if not weights:
            zeros = [0.0] * self.k
            return {"sparsity": zeros, "sparsity_1e-3": zeros, "l1_norm": zeros, "l2_norm": zeros}
        total = sum(w.shape[1] for w in weights)
        exact = sum((w == 0).sum(dim=1) for w in weights)
        near = sum((w.abs() <= 1e-3).sum(dim=1) for w in weights)
        l1 = sum(torch.linalg.vector_norm(w, 1, dim=1, dtype=torch.float64) for w in weights)
        l2 = sum(
            torch.linalg.vector_norm(w, 2, dim=1, dtype=torch.float64).square() for w in weights
        )
        assert isinstance(exact, torch.Tensor)
        assert isinstance(near, torch.Tensor)
        assert isinstance(l1, torch.Tensor)
        assert isinstance(l2, torch.Tensor)
        table = torch.stack([exact.double() / total, near.double() / total, l1, l2.sqrt()])
        rows = table.tolist()
        return {
            "sparsity": rows[0],
            "sparsity_1e-3": rows[1],
            "l1_norm": rows[2],
            "l2_norm": rows[3],
        }

    def member_module(self, member: int, module: nn.Module | None = None) -> nn.Module:
        """A module holding member ``member``'s weights and buffers (a copy of the model,
        made once per slot by the caller and refreshed here)."""
        target = module if module is not None else copy.deepcopy(self.model)
        with torch.no_grad():
            named = dict(target.named_parameters())
            for name in self.names:
                named[name].copy_(self.params[name][member])
            for name, buffer in target.named_buffers():
                buffer.copy_(self.buffers[name][member])
        return target
