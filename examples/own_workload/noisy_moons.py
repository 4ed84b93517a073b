"""Your own model and data as a ``Workload`` class: regsweep owns the training loop.

Two interleaved half-moons (scikit-learn's ``make_moons``: generated, nothing downloads)
hidden among ``n_noise_features`` columns of pure noise, with few rows: unregularized, the
MLP fits the noise. Because regsweep owns the loop, everything the spec says about training
applies: the optimizer and its learning rates, schedules, clipping, early stopping,
population trials, and path mode's warm starts.

Register it, then sweep it (from the repository's root)::

    REGSWEEP_PLUGINS=noisy_moons PYTHONPATH=examples/own_workload \\
        regsweep run examples/own_workload/sweep.yaml

or, packaged, with an entry point in your pyproject.toml::

    [project.entry-points."regsweep.workloads"]
    noisy_moons = "noisy_moons:NoisyMoonsWorkload"
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from sklearn.datasets import make_moons
from torch import nn

from regcore.workloads import Dataset, Workload, WorkloadParams, register_workload


class MoonsParams(WorkloadParams):
    """What a spec may set in ``workload.params`` (or search in ``search_space.params``).
    ``WorkloadParams`` refuses unknown keys, and ``regsweep validate`` shows these checks."""

    n_samples: int = Field(default=400, ge=20, le=100_000, description="rows, train + val")
    noise: float = Field(default=0.25, ge=0.0, le=2.0, description="noise on the two moons")
    n_noise_features: int = Field(default=40, ge=0, le=1_000, description="columns of noise")
    hidden: int = Field(default=128, ge=1, le=4096, description="width of both hidden layers")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    seed: int = Field(default=0, ge=0, lt=2**32, description="seed of the generated rows")
    split_seed: int = Field(default=0, ge=0, lt=2**32, description="seed of the split")


@register_workload  # importing this module registers it under `name`
class NoisyMoonsWorkload(Workload[MoonsParams]):
    """A (2 + n_noise_features)-hidden-hidden-2 MLP on the noisy moons; half the rows
    validate."""

    name = "noisy_moons"  # what a spec's workload.name says
    task = "classification"  # the default loss: cross-entropy (regression: MSE)
    Params = MoonsParams
    metrics = ("val_loss", "val_accuracy", "val_brier")  # what metrics_of returns
    maximize = frozenset({"val_accuracy"})  # larger is better for these; smaller for the rest
    # The parameter that seeds the train/validation split: a confirmation varies it per seed.
    split_param = "split_seed"

    def load_data(self, *, seed: int) -> Dataset:
        # The rows and the split are fixed by the params, not by the trial's seed: every
        # trial of a sweep is scored on the same validation rows.
        p = self.params
        moons, y = make_moons(n_samples=p.n_samples, noise=p.noise, random_state=p.seed)
        noise = np.random.default_rng(p.seed).normal(size=(p.n_samples, p.n_noise_features))
        x = np.hstack([moons, noise])
        order = np.random.default_rng(p.split_seed).permutation(p.n_samples)
        val, train = order[: p.n_samples // 2], order[p.n_samples // 2 :]
        # Standardized with the training rows' statistics only.
        x = (x - x[train].mean(axis=0)) / x[train].std(axis=0)
        return Dataset(  # on the CPU; the loop moves them to the trial's device once
            x_train=torch.tensor(x[train], dtype=torch.float32),
            y_train=torch.tensor(y[train], dtype=torch.int64),
            x_val=torch.tensor(x[val], dtype=torch.float32),
            y_val=torch.tensor(y[val], dtype=torch.int64),
        )

    def build_model(self, *, seed: int) -> nn.Module:
        torch.manual_seed(seed)  # the trial's seed: the same seed, the same initial weights
        p = self.params
        return nn.Sequential(
            nn.Linear(2 + p.n_noise_features, p.hidden),
            nn.ReLU(),
            nn.Dropout(p.dropout),
            nn.Linear(p.hidden, p.hidden),
            nn.ReLU(),
            nn.Linear(p.hidden, 2),
        )

    def metrics_of(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """The base class gives val_loss (this workload's loss) and val_accuracy; add the
        Brier score of the predicted probability of the second moon."""
        metrics = super().metrics_of(output, target)
        p_second = output.softmax(dim=1)[:, 1]
        metrics["val_brier"] = float(((p_second - target.float()) ** 2).mean())
        return metrics
