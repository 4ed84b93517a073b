"""The trial runner: every way a trial can end is a trial state with its reason."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
import torch
from optuna.trial import TrialState
from torch import nn

from regcore.spec import SweepSpec, parse_spec
from regcore.spec._suggest import create_pruner, create_sampler
from regcore.store import create_storage
from regcore.workloads import SparseRegressionWorkload, register_workload
from worker.runner import run_trial

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_spec(**overrides: Any) -> SweepSpec:
    data: dict[str, Any] = {
        "name": "runner-test",
        "workload": {
            "name": "sparse_regression",
            "params": {"n_samples": 200, "n_features": 20, "n_informative": 3},
        },
        "search_space": {"l1": {"choices": [0.05]}, "l2": 0.0, "method": "proximal"},
        "optimizer": {"name": "adam", "lr": 0.03},
        "training": {"epochs": 3, "batch_size": 200, "device": "cpu"},
        "pruner": {"name": "none"},
    }
    data.update(overrides)
    return parse_spec(data)


def study_for(spec: SweepSpec, tmp_path: Path) -> optuna.Study:
    return optuna.create_study(
        study_name=spec.name,
        storage=create_storage(f"sqlite:///{tmp_path / 'runner.db'}"),
        directions=spec.directions,
        sampler=create_sampler(spec),
        pruner=create_pruner(spec),
    )


def test_a_trial_records_its_setting_and_metrics(tmp_path: Path) -> None:
    spec = make_spec()
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.COMPLETE
    trial = study.trials[0]
    attrs = trial.user_attrs
    assert (attrs["method"], attrs["l1"], attrs["l2"], attrs["lr"]) == ("proximal", 0.05, 0.0, 0.03)
    for key in ("sparsity", "sparsity_1e-3", "l1_norm", "l2_norm", "train_loss", "support_f1"):
        assert key in attrs
    for key in ("epochs_run", "wall_s", "median_step_ms", "device", "torch_version", "seed"):
        assert key in attrs
    assert attrs["epochs_run"] == 3
    assert trial.value == attrs["val_loss"]
    assert sorted(trial.intermediate_values) == [0, 1, 2]


def test_the_baseline_trial_trains_without_regularization(tmp_path: Path) -> None:
    spec = make_spec()
    study = study_for(spec, tmp_path)
    study.enqueue_trial({"l1": 0.05}, user_attrs={"baseline": True})
    run_trial(study, study.ask(), spec)
    attrs = study.trials[0].user_attrs
    assert (attrs["l1"], attrs["l2"], attrs["sparsity"]) == (0.0, 0.0, 0.0)


def test_weight_decay_trials_do_not_sample_l1(tmp_path: Path) -> None:
    spec = make_spec(
        search_space={
            "l1": {"low": 1e-4, "high": 1e-1, "log": True},
            "l2": {"low": 1e-4, "high": 1e-1, "log": True},
            "method": ["weight_decay", "proximal"],
        }
    )
    study = study_for(spec, tmp_path)
    for _ in range(8):
        run_trial(study, study.ask(), spec)
    for trial in study.trials:
        if trial.params["method"] == "weight_decay":
            assert "l1" not in trial.params
            assert trial.user_attrs["l1"] == 0.0
        else:
            assert "l1" in trial.params


def test_a_diverging_trial_fails_with_its_reason_and_the_worker_goes_on(tmp_path: Path) -> None:
    spec = make_spec(optimizer={"name": "sgd", "lr": 1e6}, search_space={"l1": 0, "l2": 0})
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.FAIL
    attrs = study.trials[0].user_attrs
    assert attrs["fail_reason"].startswith("diverged")
    assert attrs["final_failure"] is True


@register_workload
class NonFiniteValidation(SparseRegressionWorkload):
    """sparse_regression whose training is fine but whose validation loss is ``params.value``
    (NaN or infinite): what a broken metric or an overflow in evaluation gives."""

    name = "test_non_finite_validation"

    @torch.no_grad()
    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {**super().evaluate(model, x, y), "val_loss": self.bad_value}

    bad_value = math.nan


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_objective_fails_the_trial_though_training_was_finite(
    bad: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(NonFiniteValidation, "bad_value", bad)
    spec = make_spec(workload={"name": NonFiniteValidation.name, "params": {"n_samples": 200}})
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.FAIL
    attrs = study.trials[0].user_attrs
    assert math.isfinite(attrs["train_loss"])
    assert attrs["fail_reason"] == f"diverged: objective values [{bad}]"
    assert attrs["final_failure"] is True  # the point itself is bad: it uses budget


def test_a_workload_that_cannot_be_built_fails_the_trial(tmp_path: Path) -> None:
    params = {"path": "missing.csv", "target": "y", "task": "regression"}
    spec = make_spec(workload={"name": "tabular_file", "params": params})
    study = study_for(spec, tmp_path)
    state = run_trial(study, study.ask(), spec, data_dir=tmp_path)
    assert state == TrialState.FAIL
    assert study.trials[0].user_attrs["fail_reason"].startswith("invalid")


def test_a_stop_request_fails_the_trial_without_using_budget(tmp_path: Path) -> None:
    spec = make_spec()
    study = study_for(spec, tmp_path)
    run_trial(study, study.ask(), spec, should_stop=lambda: True)
    attrs = study.trials[0].user_attrs
    assert study.trials[0].state == TrialState.FAIL
    assert (attrs["interrupted"], attrs["final_failure"]) == (True, False)


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_a_pruner_stops_a_hopeless_trial(pruner: str, tmp_path: Path) -> None:
    spec = make_spec(
        search_space={"l1": {"choices": [0.0, 50.0]}, "l2": 0.0, "method": "proximal"},
        training={"epochs": 8, "batch_size": 200, "device": "cpu"},
        pruner={"name": pruner},
    )
    study = study_for(spec, tmp_path)
    for _ in range(5):  # MedianPruner's n_startup_trials
        study.enqueue_trial({"l1": 0.0})
        run_trial(study, study.ask(), spec)
    study.enqueue_trial({"l1": 50.0})  # zeroes every weight: hopeless
    assert run_trial(study, study.ask(), spec) == TrialState.PRUNED
    assert study.trials[-1].user_attrs["epochs_run"] < 8


def test_only_a_trial_better_than_all_before_keeps_its_weights(tmp_path: Path) -> None:
    spec = make_spec(search_space={"l1": {"choices": [0.05, 5.0]}, "l2": 0.0, "method": "proximal"})
    study = study_for(spec, tmp_path)
    artifacts = tmp_path / "artifacts"
    for l1 in (0.05, 5.0):  # the second, with a huge λ₁, is far worse
        study.enqueue_trial({"l1": l1})
        assert run_trial(study, study.ask(), spec, artifact_dir=artifacts) == TrialState.COMPLETE

    good, bad = study.trials
    assert bad.value is not None
    assert good.value is not None
    assert bad.value > good.value
    assert "weights_artifact" not in bad.user_attrs
    storage = create_storage(f"sqlite:///{tmp_path / 'runner.db'}")
    (meta,) = optuna.artifacts.get_all_artifact_meta(good, storage=storage)
    assert meta.artifact_id == good.user_attrs["weights_artifact"]
    weights = torch.load(artifacts / meta.artifact_id, weights_only=True)
    assert {k: v.shape for k, v in weights.items()}  # the model's state dict


def test_a_lost_database_connection_is_no_verdict_on_the_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outage mid-trial reaches the worker's loop (which retries and re-queues) instead of
    being recorded as the point's final failure, which would use budget."""
    spec = make_spec()
    study = study_for(spec, tmp_path)
    trial = study.ask()

    def unreachable(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("SELECT 1", {}, ConnectionError("server closed"))

    monkeypatch.setattr("worker.runner.build_workload", unreachable)
    with pytest.raises(sa.exc.OperationalError):
        run_trial(study, trial, spec)

    frozen = study.trials[trial.number]
    assert frozen.state == TrialState.RUNNING  # left for the worker to settle
    assert "final_failure" not in frozen.user_attrs
