"""Sparsity and norms of the regularized weights (the numbers a sweep records per trial)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from regcore.regularizers._select import Exclude, regularized_tensors


def _tensors(model: nn.Module | Sequence[torch.Tensor], exclude: Exclude) -> list[torch.Tensor]:
    if isinstance(model, nn.Module):
        return regularized_tensors(model, exclude)
    return [t.detach() for t in model]


@torch.no_grad()
def sparsity(
    model: nn.Module | Sequence[torch.Tensor], *, tol: float = 0.0, exclude: Exclude = None
) -> float:
    """Fraction of the regularized weights with ``|w| <= tol`` (``tol=0``: exactly zero).

    >>> sparsity(model)              # exact zeros, as only the proximal method produces them
    >>> sparsity(model, tol=1e-3)    # near-zeros, what subgradient L1 (loss, hook) gives

    ``model`` is a module (its parameters chosen by ``exclude``, as for
    :class:`~regcore.regularizers.Regularizer`) or a list of tensors.
    """
    if tol < 0:
        raise ValueError(f"tol must be >= 0, but got {tol=}")
    tensors = _tensors(model, exclude)
    total = sum(t.numel() for t in tensors)
    if total == 0:
        return 0.0
    zeros = sum(int((t.abs() <= tol).sum()) for t in tensors)
    return zeros / total


@torch.no_grad()
def l1_norm(model: nn.Module | Sequence[torch.Tensor], *, exclude: Exclude = None) -> float:
    """``Σ|w|`` over the regularized weights."""
    norms = [torch.linalg.vector_norm(t, 1, dtype=torch.float64) for t in _tensors(model, exclude)]
    return float(sum(norms))


@torch.no_grad()
def l2_norm(model: nn.Module | Sequence[torch.Tensor], *, exclude: Exclude = None) -> float:
    """``sqrt(Σw²)`` over the regularized weights (the penalty uses ``Σw²``, its square)."""
    norms = [torch.linalg.vector_norm(t, 2, dtype=torch.float64) for t in _tensors(model, exclude)]
    return math.sqrt(float(sum(n.square() for n in norms)))
