"""A built-in workload whose data come as torch Datasets, for the loaders' tests."""

from __future__ import annotations

from torch import nn
from torch.utils.data import TensorDataset

from regcore.workloads import Dataset, Datasets, DigitsMLPWorkload, Workload
from regcore.workloads._digits import DigitsMLPParams


class DigitsAsDatasets(Workload[DigitsMLPParams]):
    """digits_mlp whose data come as torch Datasets: the same images and model, the data read
    through loaders."""

    name = "test_digits_as_datasets"
    task = "classification"
    Params = DigitsMLPParams
    metrics = ("val_loss", "val_accuracy")

    def load_data(self, *, seed: int) -> Datasets:
        return as_datasets(DigitsMLPWorkload(params=self.params).load_data(seed=seed))

    def build_model(self, *, seed: int) -> nn.Module:
        return DigitsMLPWorkload(params=self.params).build_model(seed=seed)


def as_datasets(data: Dataset) -> Datasets:
    return Datasets(
        train=TensorDataset(data.x_train, data.y_train),
        val=TensorDataset(data.x_val, data.y_val),
    )
