"""The workload abstraction: what a trial trains and how it is scored.

A workload is referred to by its registered name and built from plain parameters (validated
by its ``Params`` model), so a sweep spec never names code to import.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn
from torch.utils.data import Dataset as TorchDataset


class WorkloadParams(BaseModel):
    """Base of every workload's parameters: unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """Train and validation tensors, on the CPU (the trial runner moves them to the device
    once): the fast path for data that fit in memory."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class Datasets:
    """Train and validation ``torch.utils.data.Dataset``s whose items are ``(x, y)``: for data
    too large for one tensor, or made on the fly (augmentation). The loop reads them through
    DataLoaders (``training.num_workers``) and evaluates in batches."""

    train: TorchDataset[Any]
    val: TorchDataset[Any]


P = TypeVar("P", bound=WorkloadParams)


class Workload(abc.ABC, Generic[P]):
    """A model, its data, its loss and its validation metrics.

    Subclasses set ``name``, ``task``, ``Params`` (a :class:`WorkloadParams` subclass) and
    ``metrics`` (names :meth:`evaluate` returns; always includes ``val_loss``), and implement
    :meth:`load_data`, :meth:`build_model` and :meth:`evaluate`. Building is deterministic
    for a given ``seed``.
    """

    name: ClassVar[str]
    task: ClassVar[Literal["classification", "regression"]]
    Params: ClassVar[type[WorkloadParams]]
    metrics: ClassVar[tuple[str, ...]]
    # Whether larger is better, per metric (for objective directions and reports).
    maximize: ClassVar[frozenset[str]] = frozenset()
    # The parameter that seeds the train/validation split (e.g. ``split_seed``), if any: a
    # confirmation varies it per seed, so its seeds vary the data as well as the weights.
    split_param: ClassVar[str | None] = None

    def __init__(self, *, params: P, data_dir: Path | None = None) -> None:
        self.params = params
        self.data_dir = data_dir

    @abc.abstractmethod
    def load_data(self, *, seed: int) -> Dataset | Datasets:
        """Train/validation split of this workload's data (nothing is downloaded)."""

    @abc.abstractmethod
    def build_model(self, *, seed: int) -> nn.Module:
        """A freshly initialized model (``torch.manual_seed(seed)`` first)."""

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The data term of the training loss (mean over the batch)."""
        if self.task == "classification":
            return nn.functional.cross_entropy(output, target)
        return nn.functional.mse_loss(output, target)

    def metrics_of(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """Validation metrics of the model's ``output`` on every validation ``target``;
        every name in ``metrics``. Default: loss, and accuracy."""
        result = {"val_loss": float(self.loss(output, target))}
        if self.task == "classification":
            result["val_accuracy"] = float((output.argmax(dim=1) == target).float().mean())
        return result

    @torch.no_grad()
    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Validation metrics from tensors (:class:`Dataset`)."""
        return self.metrics_of(model(x), y)

    @torch.no_grad()
    def evaluate_batches(
        self, model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]
    ) -> dict[str, float]:
        """Validation metrics from batches (:class:`Datasets`): the outputs are gathered on
        the CPU (they are small; the inputs are not), then :meth:`metrics_of`."""
        outputs, targets = [], []
        for x, y in batches:
            outputs.append(model(x).float().cpu())
            targets.append(y.cpu())
        return self.metrics_of(torch.cat(outputs), torch.cat(targets))
