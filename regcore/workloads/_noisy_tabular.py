"""Wide, noisy tabular classification: an MLP on a few hundred generated rows of many
features, few of them informative, with a share of the labels flipped at random.

Unlike the digits and sparse_regression, it is the case where λ decides between a network
that memorizes its noise and one that generalizes, and where that shows late: without λ
the validation loss falls for a few epochs, then climbs as the network fits the flipped
labels, so early epochs rank λ wrongly. A large λ trained from scratch shrinks the network
to the origin before it learns (every output equal: ``val_loss`` = ln ``n_classes``), while
the same λ from trained weights does not. The rows come from scikit-learn's
``make_classification`` (nothing downloads); everything is fixed by the params.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from regcore.workloads._base import Dataset, Workload, WorkloadParams
from regcore.workloads._common import (
    FloatArray,
    IntArray,
    SplitSeed,
    ValFraction,
    Widths,
    features,
    labels,
    mlp,
    split_indices,
    standardize,
)
from regcore.workloads._registry import register_workload

MAX_CELLS = 20_000_000  # X in float64: 160 MB, as sparse_regression


class NoisyTabularParams(WorkloadParams):
    n_samples: int = Field(default=600, ge=20, le=1_000_000, description="rows, train + val")
    n_features: int = Field(default=300, ge=2, le=100_000, description="columns of X")
    n_informative: int = Field(
        default=8, ge=1, description="features that carry the classes (the rest is noise)"
    )
    n_classes: int = Field(default=3, ge=2, le=100, description="classes, balanced")
    label_noise: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="share of rows whose label is drawn at random (may be the true one)",
    )
    class_sep: float = Field(
        default=3.0, gt=0.0, le=100.0, description="distance between the class clusters"
    )
    hidden: Widths = Field(default=[256, 256], description="hidden layer widths; [] = linear")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="after each hidden layer")
    seed: int = Field(default=0, ge=0, lt=2**32, description="seed of the generated rows")
    split_seed: SplitSeed = Field(default=0, description="seed of the train/validation split")
    val_fraction: ValFraction = Field(default=0.5, description="share of rows held out")

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.n_informative > self.n_features:
            raise ValueError(
                f"n_informative must be at most n_features, but got {self.n_informative=} "
                f"and {self.n_features=}; lower n_informative or raise n_features"
            )
        # make_classification puts 2 clusters per class on the corners of a hypercube of
        # n_informative dimensions: it refuses more clusters than corners.
        if 2 * self.n_classes > 2**self.n_informative:
            raise ValueError(
                f"n_classes × 2 clusters must fit on the 2**n_informative corners of the "
                f"informative hypercube, but got {self.n_classes=} and "
                f"{self.n_informative=}; raise n_informative or lower n_classes"
            )
        if self.n_samples * self.n_features > MAX_CELLS:
            raise ValueError(
                f"n_samples × n_features must be at most {MAX_CELLS:_} (the data is generated "
                f"in memory), but got {self.n_samples=} and {self.n_features=}; lower either"
            )
        return self


@register_workload
class NoisyTabularWorkload(Workload[NoisyTabularParams]):
    """An ``n_features``-hidden…-``n_classes`` MLP with ReLU, cross-entropy on the logits;
    features standardized with the training rows' statistics, the split stratified."""

    name = "noisy_tabular"
    task = "classification"
    Params = NoisyTabularParams
    metrics = ("val_loss", "val_accuracy")
    maximize = frozenset({"val_accuracy"})
    split_param = "split_seed"  # the rows stay params.seed's: a confirmation varies the split

    def generate(self) -> tuple[FloatArray, IntArray]:
        """``X`` (float64) and the labels, noise included: the same for the same params."""
        from sklearn.datasets import make_classification  # here: ~150 MiB, for its data alone

        p = self.params
        x, y = make_classification(
            n_samples=p.n_samples,
            n_features=p.n_features,
            n_informative=p.n_informative,
            n_redundant=0,
            n_repeated=0,
            n_classes=p.n_classes,
            n_clusters_per_class=2,
            flip_y=p.label_noise,
            class_sep=p.class_sep,
            random_state=p.seed,
        )
        return np.asarray(x, np.float64), np.asarray(y, np.int64)

    def load_data(self, *, seed: int) -> Dataset:
        # The rows are a property of the params (params.seed), the split of
        # params.split_seed: not of the trial's seed, so every trial sees the same rows.
        x, y = self.generate()
        p = self.params
        train, val = split_indices(len(y), val_size=p.val_fraction, seed=p.split_seed, stratify=y)
        x_train, x_val = standardize(x[train], x[val])
        return Dataset(
            x_train=features(x_train),
            y_train=labels(y[train]),
            x_val=features(x_val),
            y_val=labels(y[val]),
        )

    def build_model(self, *, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        p = self.params
        return mlp(p.n_features, p.hidden, p.n_classes, dropout=p.dropout)
