"""Two small linear problems on data sets that ship with scikit-learn: logistic regression on
breast cancer (569 × 30) and linear regression on diabetes (442 × 10).

Features (and the diabetes target) are standardized with the training rows' statistics only.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
from pydantic import Field
from torch import nn

from regcore.workloads._base import Dataset, Workload, WorkloadParams
from regcore.workloads._common import (
    FloatArray,
    SplitSeed,
    ValFraction,
    features,
    labels,
    regression_dataset,
    regression_metrics,
    split_indices,
    standardize,
)
from regcore.workloads._registry import register_workload


class SplitParams(WorkloadParams):
    val_fraction: ValFraction = Field(default=0.25, description="share of rows held out")
    split_seed: SplitSeed = Field(default=0, description="seed of the train/validation split")


@cache
def _breast_cancer() -> tuple[FloatArray, FloatArray]:
    from sklearn.datasets import load_breast_cancer  # here: ~150 MiB, for its data alone

    bunch = load_breast_cancer()
    return np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.float64)


@cache
def _diabetes() -> tuple[FloatArray, FloatArray]:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(scaled=False)
    return np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.float64)


@register_workload
class BreastCancerLogregWorkload(Workload[SplitParams]):
    """Logistic regression, malignant (0) vs benign (1): ``nn.Linear(30, 1)`` gives the logit
    and the loss is binary cross-entropy on it. One weight per feature (not two softmax
    logits) so that an L1 zero means exactly "this feature is not used"."""

    name = "breast_cancer_logreg"
    task = "classification"
    Params = SplitParams
    metrics = ("val_loss", "val_accuracy")
    maximize = frozenset({"val_accuracy"})
    split_param = "split_seed"

    def load_data(self, *, seed: int) -> Dataset:
        x, y = _breast_cancer()
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
        return nn.Linear(30, 1)

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(
            output.reshape(-1), target.to(output.dtype)
        )

    def metrics_of(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        logit = output.float().reshape(-1)
        return {
            "val_loss": float(self.loss(logit, target)),
            "val_accuracy": float(((logit > 0).long() == target).float().mean()),
        }


@register_workload
class DiabetesLinearWorkload(Workload[SplitParams]):
    """Linear regression of disease progression on 10 baseline variables, ``nn.Linear(10, 1)``;
    X and y standardized, so ``val_loss`` is the MSE in units of the target's variance."""

    name = "diabetes_linear"
    task = "regression"
    Params = SplitParams
    metrics = ("val_loss", "val_r2")
    maximize = frozenset({"val_r2"})
    split_param = "split_seed"

    def load_data(self, *, seed: int) -> Dataset:
        x, y = _diabetes()
        p = self.params
        return regression_dataset(x, y, val_fraction=p.val_fraction, split_seed=p.split_seed)

    def build_model(self, *, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Linear(10, 1)

    def metrics_of(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        return regression_metrics(output, target)
