"""Early stopping in the built-in loop: when it ends a trial, and which epoch's result the
trial keeps (``training.early_stopping``)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from regcore.spec import EarlyStoppingSpec, SpecError, parse_spec
from regcore.worker.training import EarlyStop, TrainConfig, train_workload
from regcore.workloads import build_workload

# 150 digits and a wide MLP: validation loss falls, then rises as it overfits (λ = 0).
OVERFIT: dict[str, Any] = {"hidden": [256, 256], "train_size": 150}


def overfit(rule: EarlyStoppingSpec | None, epochs: int = 60) -> Any:
    workload = build_workload("digits_mlp", OVERFIT)
    config = TrainConfig(epochs=epochs, batch_size=32, seed=0, device="cpu", early_stopping=rule)
    return workload, train_workload(workload, l1=0.0, l2=0.0, method="loss", config=config)


def test_patience_ends_the_run_and_restore_best_keeps_the_best_epoch() -> None:
    workload, result = overfit(EarlyStoppingSpec(patience=5))
    losses = [m["val_loss"] for m in result.history]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert result.epochs_run == best + 1 + 5 < 60  # five epochs without a better one
    assert result.objective_epoch == best
    assert result.metrics["val_loss"] == losses[best] < losses[-1]
    data = workload.load_data(seed=0)  # and the model is the best epoch's, not the last's
    with torch.no_grad():
        again = workload.evaluate(result.model, data.x_val, data.y_val)["val_loss"]
    assert again == pytest.approx(losses[best], rel=1e-5)


def test_without_restore_best_the_last_epoch_stands() -> None:
    _, result = overfit(EarlyStoppingSpec(patience=5, restore_best=False))
    assert result.objective_epoch == result.epochs_run - 1
    assert result.metrics["val_loss"] == result.history[-1]["val_loss"]


def test_without_early_stopping_every_epoch_runs_and_the_last_counts() -> None:
    _, result = overfit(None, epochs=12)
    assert (result.epochs_run, result.objective_epoch) == (12, 11)
    assert result.history[-1].items() <= result.metrics.items()


def test_an_improvement_smaller_than_min_delta_is_none() -> None:
    watch = EarlyStop(rule=EarlyStoppingSpec(patience=2, min_delta=0.1), metric="val_loss")
    assert watch.improved(0, {"val_loss": 1.0})
    assert not watch.improved(1, {"val_loss": 0.95})  # better, but by less than 0.1
    assert not watch.spent
    assert not watch.improved(2, {"val_loss": 0.92})
    assert watch.spent
    assert watch.best_epoch == 0


def test_a_maximized_metric_improves_upward_and_nan_never_improves() -> None:
    watch = EarlyStop(rule=EarlyStoppingSpec(patience=1), metric="acc", maximize=True)
    assert watch.improved(0, {"acc": 0.5})
    assert watch.improved(1, {"acc": 0.6})
    assert not watch.improved(2, {"acc": math.nan})
    assert watch.spent


SPEC: dict[str, Any] = {
    "name": "stop",
    "workload": {"name": "digits_mlp"},
    "search_space": {"l1": 0.0, "l2": {"low": 1e-5, "high": 1e-2, "log": True}},
    "training": {"epochs": 50, "early_stopping": {"patience": 5}},
}


def test_a_spec_takes_early_stopping_with_its_defaults() -> None:
    rule = parse_spec(SPEC).training.early_stopping
    assert rule == EarlyStoppingSpec(patience=5, min_delta=0.0, restore_best=True)


def test_population_trials_refuse_early_stopping() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**SPEC, "execution": {"population": 4}})
    (problem,) = info.value.problems
    assert problem.field == "training.early_stopping"
    assert "set execution.population: 1" in problem.message
