"""noisy_tabular: the generated rows and their split, its parameters, and the three things
it exists for — λ = 0 overfits late, a moderate λ beats it, and a large λ kills the network
from scratch but not from trained weights."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import nn

from regcore.regularizers import Regularizer
from regcore.workloads import (
    Dataset,
    NoisyTabularWorkload,
    WorkloadError,
    build_workload,
    get_workload,
)

SMALL = {"n_samples": 120, "n_features": 40, "n_informative": 4, "hidden": [16]}
# The default rows with a narrower network and a faster optimizer than the bench's (256 × 256,
# lr 1e-4, 200 epochs): the same three behaviours in about 3 s.
TRAINED = {"n_samples": 600, "n_features": 300, "hidden": [64, 64]}
EPOCHS, LR = 30, 1e-3
LN_3 = math.log(3)


def data_of(params: dict[str, Any]) -> Dataset:
    data = build_workload("noisy_tabular", params).load_data(seed=0)
    assert isinstance(data, Dataset)
    return data


def test_defaults_are_wide_noisy_three_class_rows_split_in_half() -> None:
    data = data_of({})
    assert data.x_train.shape == (300, 300)
    assert data.x_val.shape == (300, 300)
    assert data.x_train.dtype == data.x_val.dtype == torch.float32
    assert data.y_train.dtype == data.y_val.dtype == torch.int64
    # Three classes of about a third each (the noise moves a few rows), split stratified:
    # each class has as many rows on either side, to one.
    train, val = torch.bincount(data.y_train), torch.bincount(data.y_val)
    assert train.shape == val.shape == (3,)
    assert int(train.min()) > 80
    assert int((train - val).abs().max()) <= 1
    # Standardized with the training rows' statistics only.
    assert torch.allclose(data.x_train.mean(dim=0), torch.zeros(300), atol=1e-5)
    assert torch.allclose(data.x_train.std(dim=0, unbiased=False), torch.ones(300), atol=1e-4)
    assert not torch.allclose(data.x_val.mean(dim=0), torch.zeros(300), atol=1e-3)


def test_same_params_give_the_same_rows_split_and_initial_weights() -> None:
    a, b = data_of(SMALL), data_of(SMALL)
    for field in ("x_train", "y_train", "x_val", "y_val"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    first = build_workload("noisy_tabular", SMALL).build_model(seed=3)
    second = build_workload("noisy_tabular", SMALL).build_model(seed=3)
    for p, q in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(p, q)


def test_seed_draws_other_rows() -> None:
    a, b = data_of(SMALL), data_of({**SMALL, "seed": 1})
    assert a.x_train.shape == b.x_train.shape
    assert not torch.equal(a.y_train, b.y_train)


def test_split_seed_splits_the_same_rows_otherwise() -> None:
    workload = build_workload("noisy_tabular", SMALL)
    assert isinstance(workload, NoisyTabularWorkload)
    _, y = workload.generate()
    a, b = data_of(SMALL), data_of({**SMALL, "split_seed": 1})
    assert a.y_train.shape == b.y_train.shape == (60,)
    assert not torch.equal(a.y_train, b.y_train)
    # Both are splits of the same generated rows: the same labels in all.
    for data in (a, b):
        both = torch.cat([data.y_train, data.y_val])
        assert torch.equal(torch.bincount(both), torch.bincount(torch.tensor(y)))
    assert get_workload("noisy_tabular").split_param == "split_seed"


def test_model_maps_features_to_one_logit_per_class() -> None:
    params = {**SMALL, "n_classes": 4, "hidden": [8, 8]}
    workload = build_workload("noisy_tabular", params)
    data = data_of(params)
    output = workload.build_model(seed=0)(data.x_val)
    assert output.shape == (data.x_val.shape[0], 4)
    linear = build_workload("noisy_tabular", {**SMALL, "hidden": []}).build_model(seed=0)
    assert isinstance(linear, nn.Sequential)
    assert [type(m) for m in linear] == [nn.Linear]
    metrics = workload.evaluate(workload.build_model(seed=0), data.x_val, data.y_val)
    assert set(metrics) == set(workload.metrics) == {"val_loss", "val_accuracy"}


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"n_informative": 50, "n_features": 40}, "n_informative must be at most n_features"),
        ({"n_classes": 5, "n_informative": 3}, "raise n_informative or lower n_classes"),
        ({"n_samples": 100_000, "n_features": 1_000}, "n_samples × n_features must be at most"),
        ({"label_noise": 1.5}, "label_noise"),
        ({"class_sep": 0}, "class_sep"),
        ({"hidden": [0]}, "hidden"),
        ({"val_fraction": 0.9}, "val_fraction"),
        ({"split_seed": -1}, "split_seed"),
        ({"n_class": 3}, "n_class"),
    ],
)
def test_bad_params_are_refused_naming_the_field(params: dict[str, Any], words: str) -> None:
    with pytest.raises(WorkloadError, match=words):
        build_workload("noisy_tabular", params)


def fit(
    *, l1: float = 0.0, l2: float = 0.0, epochs: int, start: nn.Module | None = None
) -> tuple[nn.Module, list[float]]:
    """Adam, minibatches of 32, R(w) added to the loss; the validation loss of every epoch.
    ``start``: the weights to begin from (a warm start) instead of a fresh initialization."""
    workload = build_workload("noisy_tabular", TRAINED)
    data = data_of(TRAINED)
    model = workload.build_model(seed=0)
    if start is not None:
        model.load_state_dict(start.state_dict())
    reg = Regularizer(model, l1=l1, l2=l2, method="loss")
    optimizer = torch.optim.Adam(reg.param_groups(), lr=LR)
    reg.attach(optimizer)
    order = torch.Generator().manual_seed(0)
    curve = []
    for _ in range(epochs):
        model.train()
        for index in torch.randperm(data.x_train.shape[0], generator=order).split(32):
            optimizer.zero_grad()
            loss = workload.loss(model(data.x_train[index]), data.y_train[index])
            reg.penalize(loss).backward()
            optimizer.step()
        curve.append(workload.evaluate(model.eval(), data.x_val, data.y_val)["val_loss"])
    reg.detach()
    return model, curve


def logit_spread(model: nn.Module) -> float:
    """The largest standard deviation of a logit over the validation rows (0: the network
    answers every row alike)."""
    with torch.no_grad():
        return float(model(data_of(TRAINED).x_val).std(dim=0).max())


@pytest.fixture(scope="module")
def unregularized() -> tuple[nn.Module, list[float]]:
    return fit(epochs=EPOCHS)


def test_without_lambda_the_validation_loss_rises_after_an_early_minimum(
    unregularized: tuple[nn.Module, list[float]],
) -> None:
    _, curve = unregularized
    lowest = min(range(EPOCHS), key=curve.__getitem__)
    assert lowest < EPOCHS // 3
    assert curve[lowest] < LN_3
    assert curve[-1] > curve[lowest] + 0.3  # it fits the flipped labels


def test_a_moderate_lambda_ends_far_below_lambda_zero(
    unregularized: tuple[nn.Module, list[float]],
) -> None:
    _, regularized = fit(l1=4e-3, epochs=EPOCHS)
    assert regularized[-1] < unregularized[1][-1] - 0.3
    assert regularized[-1] < LN_3 - 0.1


def test_a_large_lambda_kills_the_network_from_scratch_but_not_from_trained_weights(
    unregularized: tuple[nn.Module, list[float]],
) -> None:
    scratch, from_scratch = fit(l2=0.1, epochs=EPOCHS)
    assert from_scratch[-1] == pytest.approx(LN_3, abs=1e-3)  # every output alike
    assert logit_spread(scratch) < 1e-4
    warm, from_trained = fit(l2=0.1, epochs=5, start=unregularized[0])
    assert from_trained[-1] < LN_3 - 0.1
    assert logit_spread(warm) > 0.1
