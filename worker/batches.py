"""Where the built-in loop's minibatches come from: tensors or Datasets.

A workload's data are either tensors (:class:`regcore.workloads.Dataset`: small data, the fast
path: moved to the device once, batches are index slices there) or torch Datasets
(:class:`regcore.workloads.Datasets`: read through a DataLoader with ``num_workers`` processes,
pinned memory on CUDA, each batch copied to the device as it is needed; validation in
batches too, so the whole dataset is never on the device at once). Either way the order is
drawn from the trial's seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from regcore.workloads import Dataset, Datasets, Workload

Batch = tuple[torch.Tensor, torch.Tensor]


class Batches:
    """An epoch's training batches and the validation metrics, for one trial."""

    def __init__(
        self,
        data: Dataset | Datasets,
        *,
        device: torch.device,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
    ) -> None:
        self._device = device
        self._batch_size = batch_size
        self._generator = torch.Generator().manual_seed(seed)
        self._tensors: Dataset | None = None
        self._loaders: tuple[DataLoader[Any], DataLoader[Any]] | None = None
        if isinstance(data, Dataset):
            self._tensors = Dataset(
                x_train=data.x_train.to(device),
                y_train=data.y_train.to(device),
                x_val=data.x_val.to(device),
                y_val=data.y_val.to(device),
            )
            self.steps_per_epoch = -(-data.x_train.shape[0] // batch_size)
        else:
            pin = device.type == "cuda"
            options: dict[str, Any] = {"num_workers": num_workers, "pin_memory": pin}
            if num_workers:
                options["persistent_workers"] = True  # no new worker processes each epoch
            # The order comes from the trial's generator alone, one permutation an epoch, as
            # on the tensor path; the loaders' own draws (their workers' base seeds, taken
            # once with persistent workers, every epoch without) come from generators of
            # their own, so neither num_workers nor the global RNG (dropout) changes it.
            train = DataLoader(
                data.train,
                batch_size=batch_size,
                sampler=_Shuffled(data.train, self._generator),
                generator=torch.Generator().manual_seed(seed),
                **options,
            )
            val = DataLoader(
                data.val,
                batch_size=batch_size,
                shuffle=False,
                generator=torch.Generator().manual_seed(seed),
                **options,
            )
            self._loaders = (train, val)
            self.steps_per_epoch = len(train)

    def epoch(self) -> Iterator[Batch]:
        """One pass over the training data in a fresh order."""
        if self._tensors is not None:
            t = self._tensors
            n = t.x_train.shape[0]
            order = torch.randperm(n, generator=self._generator).to(self._device)
            for start in range(0, n, self._batch_size):
                index = order[start : start + self._batch_size]
                yield t.x_train[index], t.y_train[index]
            return
        assert self._loaders is not None
        yield from self._to_device(self._loaders[0])

    def evaluate(self, workload: Workload[Any], model: nn.Module) -> dict[str, float]:
        """The workload's validation metrics (the caller puts the model in eval mode)."""
        if self._tensors is not None:
            return workload.evaluate(model, self._tensors.x_val, self._tensors.y_val)
        assert self._loaders is not None
        return workload.evaluate_batches(model, self._to_device(self._loaders[1]))

    def _to_device(self, loader: Iterable[Any]) -> Iterator[Batch]:
        for x, y in loader:
            yield (
                x.to(self._device, non_blocking=True),
                y.to(self._device, non_blocking=True),
            )


class _Shuffled(Sampler[int]):
    """A fresh order each epoch: one ``randperm`` from ``generator``, the tensor path's draw
    (torch's RandomSampler draws a second, empty one after it every epoch)."""

    def __init__(self, dataset: Any, generator: torch.Generator) -> None:
        self._n = len(dataset)
        self._generator = generator

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self._n, generator=self._generator).tolist())

    def __len__(self) -> int:
        return self._n
