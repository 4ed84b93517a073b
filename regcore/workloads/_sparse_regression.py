"""Synthetic sparse linear regression, ``y = X·w* + ε``: many features, few informative ones.

The case L1 exists for. Besides the fit (``val_loss``, ``val_r2``) it scores how well the
learned weight recovers the true support — the set of features with a non-zero weight — as
precision, recall and F1. Only exact zeros count as "not in the support", so a method that
merely shrinks weights towards zero (``loss``, ``hook``) scores a precision of
``n_informative / n_features`` while ``proximal`` can score 1.
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
    ValFraction,
    column,
    features,
    regression_metrics,
    split_indices,
)
from regcore.workloads._registry import register_workload

MAX_CELLS = 20_000_000  # X in float64: 160 MB


class SparseRegressionParams(WorkloadParams):
    n_samples: int = Field(default=500, ge=20, le=1_000_000, description="rows, train + val")
    n_features: int = Field(default=100, ge=1, le=100_000, description="columns of X")
    n_informative: int = Field(default=10, ge=1, description="non-zeros of w*")
    noise: float = Field(default=0.5, ge=0.0, le=1e3, description="standard deviation of ε")
    seed: int = Field(default=0, ge=0, lt=2**32, description="seed of X, w*, ε and the split")
    val_fraction: ValFraction = Field(default=0.25, description="share of rows held out")

    @model_validator(mode="after")
    def _informative_fit(self) -> Self:
        if self.n_informative > self.n_features:
            raise ValueError(
                f"n_informative must be at most n_features, but got {self.n_informative=} "
                f"and {self.n_features=}; lower n_informative or raise n_features"
            )
        if self.n_samples * self.n_features > MAX_CELLS:
            raise ValueError(
                f"n_samples × n_features must be at most {MAX_CELLS:_} (the data is generated "
                f"in memory), but got {self.n_samples=} and {self.n_features=}; lower either"
            )
        return self


def support_metrics(weight: torch.Tensor, true_weight: torch.Tensor) -> dict[str, float]:
    """Precision, recall and F1 of the exact non-zeros of ``weight`` against those of
    ``true_weight`` (both flattened). An empty estimated support has precision 0."""
    found = weight.detach().reshape(-1).cpu() != 0
    true = true_weight.detach().reshape(-1).cpu() != 0
    hits = int((found & true).sum())
    n_found, n_true = int(found.sum()), int(true.sum())
    precision = hits / n_found if n_found else 0.0
    recall = hits / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"support_precision": precision, "support_recall": recall, "support_f1": f1}


@register_workload
class SparseRegressionWorkload(Workload[SparseRegressionParams]):
    """``nn.Linear(n_features, 1)`` fitted to ``y = X·w* + ε`` with ``X ~ N(0, 1)``, ``ε ~
    N(0, noise²)`` and ``n_informative`` entries of ``w*`` drawn as ±U(0.5, 1.5), the rest 0.

    Everything is fixed by ``params.seed``; :meth:`load_data` keeps ``w*`` as
    :attr:`true_weight` for :meth:`evaluate`.
    """

    name = "sparse_regression"
    task = "regression"
    Params = SparseRegressionParams
    metrics = ("val_loss", "val_r2", "support_precision", "support_recall", "support_f1")
    maximize = frozenset({"val_r2", "support_precision", "support_recall", "support_f1"})
    split_param = "seed"  # draws the data and its split

    true_weight: torch.Tensor | None = None  # w*, set per instance by load_data

    def generate(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``X``, ``y`` and ``w*`` (float64), the same for the same params."""
        p = self.params
        rng = np.random.default_rng(p.seed)
        x = rng.standard_normal((p.n_samples, p.n_features))
        w = np.zeros(p.n_features)
        support = rng.choice(p.n_features, size=p.n_informative, replace=False)
        signs = rng.choice([-1.0, 1.0], size=p.n_informative)
        w[support] = signs * rng.uniform(0.5, 1.5, size=p.n_informative)
        y = x @ w + p.noise * rng.standard_normal(p.n_samples)
        return x, y, w

    def load_data(self, *, seed: int) -> Dataset:
        # The data is a property of the params (their own seed), not of the trial's seed.
        x, y, w = self.generate()
        self.true_weight = torch.tensor(w, dtype=torch.float32)
        p = self.params
        train, val = split_indices(p.n_samples, val_size=p.val_fraction, seed=p.seed)
        return Dataset(
            x_train=features(x[train]),
            y_train=column(y[train]),
            x_val=features(x[val]),
            y_val=column(y[val]),
        )

    def build_model(self, *, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Linear(self.params.n_features, 1)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        if self.true_weight is None:  # evaluate without load_data: w* is cheap to redo
            self.true_weight = torch.tensor(self.generate()[2], dtype=torch.float32)
        weight = next(p for p in model.parameters() if p.ndim >= 2)
        return {
            **regression_metrics(model(x), y),
            **support_metrics(weight, self.true_weight),
        }
