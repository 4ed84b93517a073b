"""Gradient clipping that clips the data loss's gradient and never the penalty's
(:meth:`Regularizer.clip_grad_norm_`).

The convention: clipping acts on the data loss's gradient only; the penalty's gradient
``λ₁·sign w + 2λ₂·w`` is never clipped. That is what the optimizer's own regularization
does (coupled ``weight_decay`` and AdamW's decay act inside ``step()``, after any
clipping) and what ``fused``, ``decoupled``, ``proximal`` and ``weight_decay`` give with
torch's clip between backward and step; and it keeps λ meaning the same strength
whatever the size of the data gradient. But ``loss`` and ``hook`` put the penalty
gradient ``p`` into ``.grad`` during ``backward()``, where torch's clip would scale it
too (and they would no longer agree with ``fused``). So for them, with ``g`` the
gradient after backward (one whole ``p`` in it after ``k`` micro-steps of ``p/k``)::

    norm = ‖g − p‖ over all trainable gradients (g alone where nothing is regularized)
    c    = min(1, max_norm / (norm + 1e-6))        # torch's eps and clamp
    g   ← c·g + (1 − c)·p  = c·(g − p) + p          # regularized parameters
    g   ← c·g                                       # the others

computed by subtracting ``p`` in place, torch's own ``clip_grad_norm_`` and adding ``p``
back (the passes of ``_ops``, ``sign w`` in persistent scratch buffers). They assume
every ``backward()`` of the step went through :meth:`penalize` (``loss``) or the
attached hooks (``hook``). For the step-time methods, and with ``l1 = l2 = 0``, it *is*
``torch.nn.utils.clip_grad_norm_(trainable parameters, max_norm, norm_type)``.
"""

from __future__ import annotations

import math

import torch

from regcore.regularizers._ops import add_, add_penalty_grad_
from regcore.regularizers._scratch import ScratchBuffers


def clip_data_gradient_(
    trainable: list[torch.Tensor],
    penalized: list[torch.Tensor],
    *,
    l1: float,
    l2: float,
    scratch: ScratchBuffers,
    max_norm: float,
    norm_type: float,
) -> torch.Tensor:
    """Clip ``trainable``'s gradients as if ``penalized`` (parameters whose ``.grad`` holds
    the penalty gradient ``λ₁·sign w + 2λ₂·w``) had none: take it out, clip with torch's own
    ``clip_grad_norm_``, put it back. Returns the data gradient's total norm before clipping."""
    if isinstance(max_norm, bool) or not isinstance(max_norm, int | float):
        raise TypeError(f"max_norm must be a number, but got {max_norm!r}")
    if math.isnan(max_norm) or max_norm < 0:
        raise ValueError(
            f"max_norm must be >= 0 (math.inf: no clipping), but got max_norm={max_norm}"
        )
    if isinstance(norm_type, bool) or not isinstance(norm_type, int | float):
        raise TypeError(
            f"norm_type must be a number (2.0, or math.inf for the max norm), but got {norm_type!r}"
        )
    if not penalized or not (l1 or l2):
        return torch.nn.utils.clip_grad_norm_(trainable, max_norm, norm_type)
    grads = [p.grad for p in penalized if p.grad is not None]
    l2x2 = 2.0 * l2
    signs = scratch.like(penalized) if l1 else []
    with torch.no_grad():
        add_penalty_grad_(grads, penalized, signs, l1=-l1, l2x2=-l2x2)
        total = torch.nn.utils.clip_grad_norm_(trainable, max_norm, norm_type)
        # In fused's order, so the clipped update matches it to rounding.
        if l1:
            add_(grads, signs, l1)
        if l2x2:
            add_(grads, penalized, l2x2)
    return total
