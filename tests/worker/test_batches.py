"""Where the loop's minibatches come from: tensors (moved once, sliced on the device) or torch
Datasets (through DataLoaders); either way in the order the trial's seed draws."""

from __future__ import annotations

import pytest
import torch

from regcore.worker.batches import Batches
from regcore.workloads import Dataset, DigitsMLPWorkload
from regcore.workloads._digits import DigitsMLPParams
from tests.worker.datasets import DigitsAsDatasets, as_datasets

PARAMS = DigitsMLPParams(hidden=[16], train_size=100)


def tensors() -> Dataset:
    return DigitsMLPWorkload(params=PARAMS).load_data(seed=0)


def epoch_rows(batches: Batches, data: Dataset) -> list[int]:
    """The training rows of one epoch, in order, found by their pixels and label."""
    rows = []
    for x, y in batches.epoch():
        for xi, yi in zip(x.cpu(), y.cpu(), strict=True):
            match = (data.x_train == xi).all(dim=1) & (data.y_train == yi)
            rows.append(int(match.nonzero()[0]))
    return rows


def test_every_training_row_comes_once_an_epoch_in_a_fresh_order() -> None:
    data = tensors()
    n = data.x_train.shape[0]
    for source in (data, as_datasets(data)):
        batches = Batches(source, device=torch.device("cpu"), batch_size=32, seed=0)
        first, second = epoch_rows(batches, data), epoch_rows(batches, data)
        assert sorted(first) == sorted(second) == list(range(n))
        assert first != second


@pytest.mark.parametrize("batch_size", [32, 100, 1000])
def test_steps_per_epoch_count_the_last_partial_batch(batch_size: int) -> None:
    data = tensors()  # 100 training images
    expected = -(-100 // batch_size)
    for source in (data, as_datasets(data)):
        batches = Batches(source, device=torch.device("cpu"), batch_size=batch_size, seed=0)
        assert batches.steps_per_epoch == expected
        assert sum(1 for _ in batches.epoch()) == expected


def test_datasets_give_the_tensor_paths_batches_for_the_same_seed() -> None:
    """The order is one permutation an epoch from the trial's seed, whichever way the data
    come, so moving a workload from tensors to Datasets does not change its results."""
    data = tensors()
    cpu = torch.device("cpu")
    fast = Batches(data, device=cpu, batch_size=16, seed=7)
    loaded = Batches(as_datasets(data), device=cpu, batch_size=16, seed=7)
    for _ in range(3):
        for (x, y), (u, v) in zip(fast.epoch(), loaded.epoch(), strict=True):
            assert torch.equal(x, u)
            assert torch.equal(y, v)


def test_the_order_does_not_depend_on_num_workers() -> None:
    data = tensors()
    cpu = torch.device("cpu")
    orders = []
    for workers in (0, 2):
        batches = Batches(as_datasets(data), device=cpu, batch_size=16, seed=3, num_workers=workers)
        orders.append([epoch_rows(batches, data) for _ in range(3)])
    assert orders[0] == orders[1]


def test_another_seed_gives_another_order() -> None:
    data = tensors()
    cpu = torch.device("cpu")
    a = Batches(as_datasets(data), device=cpu, batch_size=16, seed=0)
    b = Batches(as_datasets(data), device=cpu, batch_size=16, seed=1)
    assert epoch_rows(a, data) != epoch_rows(b, data)


def test_reading_datasets_leaves_the_global_rng_alone() -> None:
    """Dropout draws from torch's global generator: the loaders must not (they draw their
    workers' seeds from generators of their own), or num_workers would change the masks."""
    data = tensors()
    workload = DigitsAsDatasets(params=PARAMS)
    model = workload.build_model(seed=0).eval()
    batches = Batches(as_datasets(data), device=torch.device("cpu"), batch_size=16, seed=0)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    for _ in range(2):
        for _ in batches.epoch():
            pass
        batches.evaluate(workload, model)
    assert torch.equal(torch.get_rng_state(), state)


def test_batches_are_on_the_trials_device(device: torch.device) -> None:
    data = tensors()
    for source in (data, as_datasets(data)):
        batches = Batches(source, device=device, batch_size=32, seed=0)
        x, y = next(iter(batches.epoch()))
        assert (x.device.type, y.device.type) == (device.type, device.type)


@pytest.mark.parametrize("batch_size", [7, 450, 1000])
def test_evaluation_in_batches_equals_the_tensor_evaluation(
    batch_size: int, device: torch.device
) -> None:
    data = tensors()
    workload = DigitsAsDatasets(params=PARAMS)
    model = workload.build_model(seed=0).to(device).eval()
    whole = Batches(data, device=device, batch_size=batch_size, seed=0).evaluate(workload, model)
    loaded = Batches(as_datasets(data), device=device, batch_size=batch_size, seed=0)
    in_batches = loaded.evaluate(workload, model)
    assert set(in_batches) == set(whole) == {"val_loss", "val_accuracy"}
    for name, value in whole.items():
        assert in_batches[name] == pytest.approx(value, abs=1e-6), name
