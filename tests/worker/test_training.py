"""The training loop every trial runs."""

from __future__ import annotations

import pytest
import torch

from regcore.workloads import build_workload
from worker.training import DivergedError, TrainConfig, TrainingInterrupted, train_workload

SPARSE = {"n_samples": 200, "n_features": 20, "n_informative": 3}


def test_same_seed_and_parameters_give_the_same_result_on_cpu() -> None:
    workload = build_workload("digits_mlp", {"hidden": [32], "train_size": 100})
    config = TrainConfig(epochs=2, batch_size=32, seed=3, device="cpu")
    first = train_workload(workload, l1=1e-4, l2=1e-3, method="proximal", config=config)
    second = train_workload(workload, l1=1e-4, l2=1e-3, method="proximal", config=config)
    assert first.metrics == {**second.metrics, "step_time_ms": first.metrics["step_time_ms"]}
    assert first.model is not None
    assert second.model is not None
    for p, q in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_every_epoch_reports_validation_and_regularization_metrics() -> None:
    workload = build_workload("sparse_regression", SPARSE)
    seen: list[int] = []
    result = train_workload(
        workload,
        l1=1e-2,
        l2=0.0,
        method="proximal",
        config=TrainConfig(epochs=3, batch_size=64, device="cpu"),
        on_epoch=lambda epoch, metrics: seen.append(epoch),
    )
    assert seen == [0, 1, 2]
    assert result.epochs_run == 3
    expected = {"val_loss", "support_f1", "sparsity", "sparsity_1e-3", "l1_norm", "l2_norm"}
    assert expected <= set(result.metrics)
    assert {"train_loss", "step_time_ms"} <= set(result.metrics)


def test_a_diverging_loss_raises_diverged_error() -> None:
    workload = build_workload("diabetes_linear", {})
    config = TrainConfig(epochs=5, batch_size=32, optimizer="sgd", lr=1e6, device="cpu")
    with pytest.raises(DivergedError, match="too large"):
        train_workload(workload, l1=0.0, l2=0.0, method="fused", config=config)


def test_should_stop_interrupts_before_the_next_step() -> None:
    workload = build_workload("sparse_regression", SPARSE)
    with pytest.raises(TrainingInterrupted, match="epoch 1"):
        train_workload(
            workload,
            l1=0.0,
            l2=0.0,
            method="fused",
            config=TrainConfig(epochs=3, device="cpu"),
            should_stop=lambda: True,
        )


def test_asking_for_cuda_without_one_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    workload = build_workload("sparse_regression", SPARSE)
    with pytest.raises(ValueError, match="no CUDA device is available"):
        train_workload(
            workload, l1=0, l2=0, method="fused", config=TrainConfig(epochs=1, device="cuda")
        )
