"""Which parameters a regularizer acts on.

By default every trainable parameter with ``ndim >= 2`` (weight matrices and convolution
kernels); biases and normalization weights (1-D) are left alone, as timm's
``param_groups_weight_decay``, nanoGPT's ``configure_optimizers`` and the HF Trainer do.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable

import torch
from torch import nn

ExcludePredicate = Callable[[str, nn.Parameter], bool]
Exclude = ExcludePredicate | Iterable[str] | None


def default_exclude(name: str, param: nn.Parameter) -> bool:
    """Exclude biases and normalization weights: every parameter with fewer than 2 dims."""
    del name
    return param.ndim < 2


def _as_predicate(exclude: Exclude) -> ExcludePredicate:
    if exclude is None:
        return default_exclude
    if callable(exclude):
        return exclude
    if isinstance(exclude, str):
        raise TypeError(
            f"exclude must be a list of name patterns or a predicate, but got the string "
            f"{exclude!r}; write exclude=[{exclude!r}]"
        )
    patterns = tuple(exclude)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"exclude patterns must be strings, but got {pattern!r}")

    def by_name(name: str, param: nn.Parameter) -> bool:
        del param
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)

    return by_name


def select_parameters(
    model: nn.Module, exclude: Exclude = None
) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """Split the model's trainable parameters into (regularized, excluded), each ``(name, p)``.

    ``exclude`` is ``None`` (the default rule, :func:`default_exclude`), a list of
    :mod:`fnmatch` patterns over parameter names (``["*.bias", "embed.*"]``), which replaces the
    default rule, or a predicate ``(name, param) -> bool`` that returns True to exclude.
    Frozen parameters (``requires_grad=False``) are in neither list. Tied parameters appear once.
    """
    is_excluded = _as_predicate(exclude)
    regularized: list[tuple[str, nn.Parameter]] = []
    excluded: list[tuple[str, nn.Parameter]] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (excluded if is_excluded(name, param) else regularized).append((name, param))
    return regularized, excluded


def regularized_tensors(model: nn.Module, exclude: Exclude = None) -> list[torch.Tensor]:
    """The tensors :func:`select_parameters` would regularize, detached (for metrics)."""
    regularized, _ = select_parameters(model, exclude)
    return [p.detach() for _, p in regularized]
