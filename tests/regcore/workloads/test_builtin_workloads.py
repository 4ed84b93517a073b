"""The built-in workloads on shipped or generated data: shapes, scaling, determinism, and
that each one learns."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from regcore.workloads import Dataset, Workload, build_workload

# Small enough to train in well under a second each.
SMALL: dict[str, dict[str, Any]] = {
    "digits_mlp": {"hidden": [32], "train_size": 300},
    "digits_cnn": {"hidden": [4, 8], "train_size": 300},
    "breast_cancer_logreg": {},
    "diabetes_linear": {},
    "sparse_regression": {"n_samples": 200, "n_features": 20, "n_informative": 5},
}
# The metric that must improve besides val_loss.
HEADLINE = {
    "digits_mlp": "val_accuracy",
    "digits_cnn": "val_accuracy",
    "breast_cancer_logreg": "val_accuracy",
    "diabetes_linear": "val_r2",
    "sparse_regression": "val_r2",
}


def fit(
    workload: Workload[Any], data: Dataset, *, epochs: int, lr: float = 1e-2
) -> torch.nn.Module:
    """Plain Adam, minibatches of 32, no regularization."""
    model = workload.build_model(seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    n = data.x_train.shape[0]
    for _ in range(epochs):
        for index in torch.randperm(n, generator=generator).split(32):
            optimizer.zero_grad()
            workload.loss(model(data.x_train[index]), data.y_train[index]).backward()
            optimizer.step()
    return model.eval()


@pytest.mark.parametrize("name", SMALL)
def test_builtin_learns(name: str) -> None:
    workload = build_workload(name, SMALL[name])
    data = workload.load_data(seed=0)
    before = workload.evaluate(workload.build_model(seed=0).eval(), data.x_val, data.y_val)
    model = fit(workload, data, epochs=8)
    after = workload.evaluate(model, data.x_val, data.y_val)
    assert set(after) == set(workload.metrics)
    assert after["val_loss"] < before["val_loss"]
    assert after[HEADLINE[name]] > before[HEADLINE[name]]


@pytest.mark.parametrize("name", SMALL)
def test_data_are_float32_with_int64_labels_or_a_float_column(name: str) -> None:
    workload = build_workload(name, SMALL[name])
    data = workload.load_data(seed=0)
    assert data.x_train.dtype == data.x_val.dtype == torch.float32
    assert data.x_train.shape[1:] == data.x_val.shape[1:]
    if workload.task == "classification":
        assert data.y_train.dtype == data.y_val.dtype == torch.int64
        assert data.y_train.shape == (data.x_train.shape[0],)
    else:
        assert data.y_train.dtype == data.y_val.dtype == torch.float32
        assert data.y_train.shape == (data.x_train.shape[0], 1)
    model = workload.build_model(seed=0)
    assert workload.loss(model(data.x_train[:5]), data.y_train[:5]).ndim == 0


@pytest.mark.parametrize("name", SMALL)
def test_same_seed_gives_same_split_and_init(name: str) -> None:
    first, second = build_workload(name, SMALL[name]), build_workload(name, SMALL[name])
    a, b = first.load_data(seed=0), second.load_data(seed=0)
    for field in ("x_train", "y_train", "x_val", "y_val"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    one, two = first.build_model(seed=7).state_dict(), second.build_model(seed=7).state_dict()
    assert all(torch.equal(one[k], two[k]) for k in one)
    other = first.build_model(seed=8).state_dict()
    assert not all(torch.equal(one[k], other[k]) for k in one)


def test_digits_pixels_are_scaled_to_unit_interval() -> None:
    data = build_workload("digits_mlp").load_data(seed=0)
    assert data.x_train.shape == (1347, 64)
    assert data.x_val.shape == (450, 64)
    assert float(data.x_train.min()) == 0.0
    assert float(data.x_train.max()) == 1.0


def test_digits_train_size_subsamples_with_a_fixed_validation_set() -> None:
    small = build_workload("digits_mlp", {"hidden": [512, 512], "train_size": 150})
    full = build_workload("digits_mlp").load_data(seed=0)
    data = small.load_data(seed=0)
    assert data.x_train.shape == (150, 64)
    assert torch.equal(data.x_val, full.x_val)
    assert torch.bincount(data.y_train).tolist() == [15] * 10  # stratified
    widths = [m.out_features for m in small.build_model(seed=0) if isinstance(m, torch.nn.Linear)]
    assert widths == [512, 512, 10]


def test_digits_split_seed_changes_the_split() -> None:
    a = build_workload("digits_mlp", {"split_seed": 0}).load_data(seed=0)
    b = build_workload("digits_mlp", {"split_seed": 1}).load_data(seed=0)
    assert not torch.equal(a.x_val, b.x_val)


def test_digits_cnn_sees_images() -> None:
    workload = build_workload("digits_cnn", {"hidden": [4, 8, 8]})
    data = workload.load_data(seed=0)
    assert data.x_train.shape[1:] == (1, 8, 8)
    assert workload.build_model(seed=0)(data.x_val[:3]).shape == (3, 10)


@pytest.mark.parametrize("name", ["breast_cancer_logreg", "diabetes_linear"])
def test_standardized_with_training_statistics_only(name: str) -> None:
    data = build_workload(name).load_data(seed=0)
    mean, std = data.x_train.mean(dim=0), data.x_train.std(dim=0, unbiased=False)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-5)
    assert torch.allclose(std, torch.ones_like(std), atol=1e-4)
    assert not torch.allclose(data.x_val.mean(dim=0), torch.zeros_like(mean), atol=1e-3)


def test_breast_cancer_is_logistic_regression_on_one_logit() -> None:
    workload = build_workload("breast_cancer_logreg")
    model = workload.build_model(seed=0)
    assert isinstance(model, torch.nn.Linear)
    assert (model.in_features, model.out_features) == (30, 1)


def test_diabetes_target_is_standardized() -> None:
    data = build_workload("diabetes_linear").load_data(seed=0)
    assert abs(float(data.y_train.mean())) < 1e-5
    assert abs(float(data.y_train.std(unbiased=False)) - 1) < 1e-4
