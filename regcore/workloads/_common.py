"""Pieces the built-in workloads share: parameter types, splits, scaling, models, metrics."""

from __future__ import annotations

from typing import Annotated

import numpy as np
import numpy.typing as npt
import torch
from pydantic import Field
from torch import nn

from regcore.workloads._base import Dataset
from regcore.workloads._split import train_test_indices

# Layer widths: at least one unit each; bounded so that a spec cannot ask a worker for a
# model that does not fit in memory (8 layers of 4096 are 134 M weights).
Width = Annotated[int, Field(ge=1, le=4096)]
Widths = Annotated[list[Width], Field(max_length=8)]
# Held-out share of the rows; both sides of the split keep a useful number of them.
ValFraction = Annotated[float, Field(ge=0.05, le=0.5)]
SplitSeed = Annotated[int, Field(ge=0, lt=2**32)]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def split_indices(
    n: int,
    *,
    val_size: float | int,
    seed: int,
    stratify: npt.NDArray[np.generic] | None = None,
) -> tuple[IntArray, IntArray]:
    """Train and validation row indices (``val_size``: a fraction of the rows, or a count);
    stratified by ``stratify`` where every class can be."""
    if stratify is not None and np.unique(stratify, return_counts=True)[1].min() < 2:
        stratify = None  # a class with one row cannot be on both sides
    train, val = train_test_indices(n, test_size=val_size, seed=seed, stratify=stratify)
    return np.sort(train), np.sort(val)


def standardize(train: FloatArray, *others: FloatArray) -> list[FloatArray]:
    """Scale to mean 0, standard deviation 1 with the training rows' statistics only (so
    nothing about the validation rows leaks into training); constant columns are only
    centred."""
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return [(a - mean) / std for a in (train, *others)]


def features(array: npt.NDArray[np.generic]) -> torch.Tensor:
    """float32 tensor (its own copy) of a feature array."""
    return torch.tensor(np.asarray(array, dtype=np.float32))


def labels(array: npt.NDArray[np.generic]) -> torch.Tensor:
    """int64 class-index tensor for cross-entropy."""
    return torch.tensor(np.asarray(array, dtype=np.int64))


def column(array: npt.NDArray[np.generic]) -> torch.Tensor:
    """float32 ``(n, 1)`` regression target, the shape of a one-output model's output."""
    return torch.tensor(np.asarray(array, dtype=np.float32).reshape(-1, 1))


def regression_dataset(
    x: FloatArray, y: FloatArray, *, val_fraction: float, split_seed: int
) -> Dataset:
    """Split, standardize features and target with the training rows' statistics."""
    train, val = split_indices(len(y), val_size=val_fraction, seed=split_seed)
    x_train, x_val = standardize(x[train], x[val])
    y_train, y_val = standardize(y[train], y[val])
    return Dataset(
        x_train=features(x_train),
        y_train=column(y_train),
        x_val=features(x_val),
        y_val=column(y_val),
    )


def mlp(
    in_features: int, hidden: list[int], out_features: int, *, dropout: float = 0.0
) -> nn.Sequential:
    """Linear layers with ReLU between them; ``hidden=[]`` is a linear model."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def regression_metrics(output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """``val_loss`` (mean squared error) and ``val_r2`` (coefficient of determination)."""
    output, target = output.float().reshape(-1), target.float().reshape(-1)
    residual = torch.sum((target - output) ** 2)
    total = torch.sum((target - target.mean()) ** 2)
    r2 = 1.0 - float(residual) / float(total) if float(total) > 0 else 0.0
    return {"val_loss": float(residual) / max(target.numel(), 1), "val_r2": r2}
