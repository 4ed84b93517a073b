"""scikit-learn's handwritten digits (1 797 images of 8×8 pixels, 10 classes) as an MLP and a
small CNN.

The validation set is a fixed, stratified quarter of the images (450), whatever
``train_size`` is, so runs with different training-set sizes are scored on the same images;
``train_size`` takes a stratified subset of the other 1 347. With few training samples and a
wide network, regularization matters: ``{"train_size": 150, "hidden": [512, 512]}`` is the
64-512-512-10 MLP that overfits 150 digits without it.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated

import numpy as np
import torch
from pydantic import Field
from torch import nn

from regcore.workloads._base import Dataset, Workload, WorkloadParams
from regcore.workloads._common import (
    FloatArray,
    IntArray,
    SplitSeed,
    Widths,
    features,
    labels,
    mlp,
    split_indices,
)
from regcore.workloads._registry import register_workload
from regcore.workloads._split import load_digits_array, train_test_indices

N_IMAGES = 1797
N_CLASSES = 10
N_VAL = 450  # a quarter, rounded the way scikit-learn's test_size=0.25 rounds it
MAX_TRAIN = N_IMAGES - N_VAL


@cache
def _digits() -> tuple[FloatArray, IntArray]:
    # Shipped inside scikit-learn (sklearn/datasets/data/digits.csv.gz): nothing downloads,
    # and the file is read without importing scikit-learn (~150 MiB a worker need not load).
    rows = load_digits_array()
    return rows[:, :-1] / 16.0, rows[:, -1].astype(np.int64)


class DigitsParams(WorkloadParams):
    """Parameters shared by both digits workloads."""

    train_size: Annotated[int, Field(ge=10, le=MAX_TRAIN)] | None = Field(
        default=None,
        description=f"training images (stratified subset); None = all {MAX_TRAIN}",
    )
    dropout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="dropout after each hidden layer (MLP) or before the classifier (CNN)",
    )
    split_seed: SplitSeed = Field(default=0, description="seed of the train/validation split")


def _split(params: DigitsParams) -> tuple[FloatArray, IntArray, FloatArray, IntArray]:
    x, y = _digits()
    train, val = split_indices(len(y), val_size=N_VAL, seed=params.split_seed, stratify=y)
    if params.train_size is not None and params.train_size < len(train):
        kept, _ = train_test_indices(
            len(train), train_size=params.train_size, seed=params.split_seed, stratify=y[train]
        )
        train = np.sort(train[kept])
    return x[train], y[train], x[val], y[val]


class DigitsMLPParams(DigitsParams):
    hidden: Widths = Field(default=[128], description="hidden layer widths; [] = linear")


@register_workload
class DigitsMLPWorkload(Workload[DigitsMLPParams]):
    """A 64-hidden…-10 MLP with ReLU on the digits, pixels scaled to [0, 1]."""

    name = "digits_mlp"
    task = "classification"
    Params = DigitsMLPParams
    metrics = ("val_loss", "val_accuracy")
    maximize = frozenset({"val_accuracy"})
    split_param = "split_seed"

    def load_data(self, *, seed: int) -> Dataset:
        # The split is fixed by params.split_seed, not by the trial's seed, so every trial
        # of a sweep is scored on the same validation images.
        x_train, y_train, x_val, y_val = _split(self.params)
        return Dataset(
            x_train=features(x_train),
            y_train=labels(y_train),
            x_val=features(x_val),
            y_val=labels(y_val),
        )

    def build_model(self, *, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        p = self.params
        return mlp(64, p.hidden, N_CLASSES, dropout=p.dropout)


Channels = Annotated[int, Field(ge=1, le=1024)]


class DigitsCNNParams(DigitsParams):
    hidden: Annotated[list[Channels], Field(min_length=1, max_length=6)] = Field(
        default=[16, 32], description="channels of each 3×3 convolution"
    )


@register_workload
class DigitsCNNWorkload(Workload[DigitsCNNParams]):
    """3×3 convolutions (ReLU; 2×2 max-pooling after the first two) and a linear classifier
    on the 1×8×8 digit images."""

    name = "digits_cnn"
    task = "classification"
    Params = DigitsCNNParams
    metrics = ("val_loss", "val_accuracy")
    maximize = frozenset({"val_accuracy"})
    split_param = "split_seed"

    def load_data(self, *, seed: int) -> Dataset:
        x_train, y_train, x_val, y_val = _split(self.params)
        return Dataset(
            x_train=features(x_train).reshape(-1, 1, 8, 8),
            y_train=labels(y_train),
            x_val=features(x_val).reshape(-1, 1, 8, 8),
            y_val=labels(y_val),
        )

    def build_model(self, *, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        layers: list[nn.Module] = []
        channels, side = 1, 8
        for i, width in enumerate(self.params.hidden):
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU()]
            if i < 2:  # 8×8 → 4×4 → 2×2; further layers keep 2×2
                layers.append(nn.MaxPool2d(2))
                side //= 2
            channels = width
        layers.append(nn.Flatten())
        if self.params.dropout > 0:
            layers.append(nn.Dropout(self.params.dropout))
        layers.append(nn.Linear(channels * side * side, N_CLASSES))
        return nn.Sequential(*layers)
