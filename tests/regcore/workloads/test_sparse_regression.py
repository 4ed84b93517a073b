"""sparse_regression: the generated problem and its support-recovery metrics."""

from __future__ import annotations

import pytest
import torch

from regcore.workloads import SparseRegressionWorkload, build_workload, support_metrics

PARAMS = {"n_samples": 100, "n_features": 10, "n_informative": 4, "noise": 0.1, "seed": 3}


def test_support_metrics_on_a_hand_made_weight() -> None:
    true = torch.tensor([1.0, -2.0, 0.0, 0.0, 0.5, 0.0])
    # Finds 0 and 4 of {0, 1, 4}, and wrongly 3: precision 2/3, recall 2/3.
    weight = torch.tensor([[0.3, 0.0, 0.0, -1e-9, 2.0, 0.0]])
    metrics = support_metrics(weight, true)
    assert metrics["support_precision"] == pytest.approx(2 / 3)
    assert metrics["support_recall"] == pytest.approx(2 / 3)
    assert metrics["support_f1"] == pytest.approx(2 / 3)


def test_support_metrics_count_only_exact_zeros() -> None:
    true = torch.tensor([1.0, 0.0, 0.0, 0.0])
    dense = support_metrics(torch.tensor([0.9, 1e-6, -1e-6, 1e-6]), true)
    assert dense == {"support_precision": 0.25, "support_recall": 1.0, "support_f1": 0.4}
    exact = support_metrics(torch.tensor([0.9, 0.0, 0.0, 0.0]), true)
    assert exact == {"support_precision": 1.0, "support_recall": 1.0, "support_f1": 1.0}
    empty = support_metrics(torch.zeros(4), true)
    assert empty == {"support_precision": 0.0, "support_recall": 0.0, "support_f1": 0.0}


def test_true_weight_has_n_informative_nonzeros_and_explains_y() -> None:
    workload = build_workload("sparse_regression", PARAMS)
    assert isinstance(workload, SparseRegressionWorkload)
    data = workload.load_data(seed=0)
    true = workload.true_weight
    assert true is not None
    assert true.shape == (10,)
    assert int((true != 0).sum()) == 4
    assert float(true.abs().max()) <= 1.5
    assert float(true[true != 0].abs().min()) >= 0.5
    residual = data.y_train - data.x_train @ true.reshape(-1, 1)
    assert float(residual.std()) == pytest.approx(0.1, rel=0.3)
    assert data.x_train.shape == (75, 10)
    assert data.x_val.shape == (25, 10)


def test_evaluate_scores_the_model_weight_against_the_truth() -> None:
    workload = build_workload("sparse_regression", PARAMS)
    data = workload.load_data(seed=0)
    assert workload.true_weight is not None
    model = torch.nn.Linear(10, 1)
    with torch.no_grad():
        model.weight.copy_(workload.true_weight.reshape(1, -1))
        model.bias.zero_()
    metrics = workload.evaluate(model, data.x_val, data.y_val)
    assert metrics["support_f1"] == 1.0
    assert metrics["val_r2"] > 0.95
    assert metrics["val_loss"] == pytest.approx(0.01, rel=0.6)


def test_evaluate_before_load_data_regenerates_the_truth() -> None:
    workload = build_workload("sparse_regression", PARAMS)
    x = torch.zeros(3, 10)
    metrics = workload.evaluate(workload.build_model(seed=0), x, torch.ones(3, 1))
    assert metrics["support_recall"] == 1.0  # a dense initial weight covers every feature
    assert metrics["support_precision"] == pytest.approx(0.4)


def test_params_seed_changes_the_problem() -> None:
    a = build_workload("sparse_regression", PARAMS)
    b = build_workload("sparse_regression", {**PARAMS, "seed": 4})
    a.load_data(seed=0)
    b.load_data(seed=0)
    assert a.true_weight is not None
    assert b.true_weight is not None
    assert not torch.equal(a.true_weight, b.true_weight)
