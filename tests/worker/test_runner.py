"""The trial runner: every way a trial can end is a trial state with its reason."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
import torch
from optuna.trial import TrialState
from torch import nn

from regcore.spec import (
    OptimizerSpec,
    RegularizeSpec,
    SchedulerSpec,
    TrainingSpec,
)
from regcore.spec.suggest import baseline_params
from regcore.store import create_storage
from regcore.worker.probe import CostProbes
from regcore.worker.runner import run_trial
from regcore.worker.training import TrainConfig, train_config
from regcore.workloads import SparseRegressionWorkload, register_workload
from tests.worker.specs import runner_spec, study_for

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_a_trial_records_its_setting_and_metrics(tmp_path: Path) -> None:
    spec = runner_spec()
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.COMPLETE
    trial = study.trials[0]
    attrs = trial.user_attrs
    assert (attrs["method"], attrs["l1"], attrs["l2"], attrs["lr"]) == ("proximal", 0.05, 0.0, 0.03)
    for key in ("sparsity", "sparsity_1e-3", "l1_norm", "l2_norm", "train_loss", "support_f1"):
        assert key in attrs
    for key in ("epochs_run", "wall_s", "median_step_ms", "device", "torch_version", "seed"):
        assert key in attrs
    assert attrs["torch_threads"] == torch.get_num_threads()
    assert attrs["epochs_run"] == 3
    assert trial.value == attrs["val_loss"]
    assert trial.intermediate_values == {}  # no pruner, no reports (regcore.worker.pruning)


def test_the_baseline_trial_trains_without_regularization(tmp_path: Path) -> None:
    spec = runner_spec()
    study = study_for(spec, tmp_path)
    study.enqueue_trial({"l1": 0.05}, user_attrs={"baseline": True})
    run_trial(study, study.ask(), spec)
    attrs = study.trials[0].user_attrs
    assert (attrs["l1"], attrs["l2"], attrs["sparsity"]) == (0.0, 0.0, 0.0)


def test_weight_decay_trials_do_not_sample_l1(tmp_path: Path) -> None:
    spec = runner_spec(
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
        assert trial.params["method_class"] == trial.user_attrs["method_class"]
        if trial.params["method_class"] == "penalty":
            assert trial.user_attrs["method"] == "weight_decay"
            assert "l1" not in trial.params
            assert trial.user_attrs["l1"] == 0.0
        else:
            assert "l1" in trial.params


def test_a_class_runs_the_method_its_cost_probe_found_cheapest(tmp_path: Path) -> None:
    spec = runner_spec(search_space={"l1": 1e-3, "l2": 1e-3, "method": ["loss", "hook", "fused"]})
    study = study_for(spec, tmp_path)
    probes = CostProbes(device="cpu", data_dir=None)
    for _ in range(2):
        assert run_trial(study, study.ask(), spec, probes=probes) == TrialState.COMPLETE
    costs = study.user_attrs["cost_probe:cpu"]
    assert set(costs) == {"none", "loss", "hook", "fused"}
    cheapest = min(["loss", "hook", "fused"], key=costs.__getitem__)
    for trial in study.trials:
        assert trial.params == {}  # one class: nothing to sample
        assert (trial.user_attrs["method_class"], trial.user_attrs["method"]) == (
            "penalty",
            cheapest,
        )


def test_a_baseline_records_lambda_zero_and_samples_no_lambda_it_did_not_train(
    tmp_path: Path,
) -> None:
    spec = runner_spec(
        search_space={
            "l1": {"low": 1e-4, "high": 1e-1, "log": True},
            "l2": {"low": 1e-4, "high": 1e-1, "log": True},
            "method": ["loss", "proximal"],
        }
    )
    study = study_for(spec, tmp_path)
    study.enqueue_trial(baseline_params(spec), user_attrs={"baseline": True})
    assert run_trial(study, study.ask(), spec) == TrialState.COMPLETE
    baseline = study.trials[0]
    assert baseline.params == {}
    attrs = baseline.user_attrs
    assert (attrs["l1"], attrs["l2"], attrs["method_class"]) == (0.0, 0.0, "none")
    assert attrs["sparsity"] == 0.0


def test_a_diverging_trial_fails_with_its_reason_and_the_worker_goes_on(tmp_path: Path) -> None:
    spec = runner_spec(optimizer={"name": "sgd", "lr": 1e6}, search_space={"l1": 0, "l2": 0})
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
    spec = runner_spec(workload={"name": NonFiniteValidation.name, "params": {"n_samples": 200}})
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.FAIL
    attrs = study.trials[0].user_attrs
    assert all(math.isfinite(v) for v in curves_of(study)["train_loss"])
    assert attrs["fail_reason"] == (
        f"diverged: val_loss became {bad} in epoch 1; λ or the learning rate is too large"
    )
    assert attrs["epochs_run"] == 1  # the epoch that reported it ends the trial
    assert attrs["final_failure"] is True  # the point itself is bad: it uses budget


def test_a_workload_that_cannot_be_built_fails_the_trial(tmp_path: Path) -> None:
    params = {"path": "missing.csv", "target": "y", "task": "regression"}
    spec = runner_spec(workload={"name": "tabular_file", "params": params})
    study = study_for(spec, tmp_path)
    state = run_trial(study, study.ask(), spec, data_dir=tmp_path)
    assert state == TrialState.FAIL
    assert study.trials[0].user_attrs["fail_reason"].startswith("invalid")


def test_a_stop_request_fails_the_trial_without_using_budget(tmp_path: Path) -> None:
    spec = runner_spec()
    study = study_for(spec, tmp_path)
    run_trial(study, study.ask(), spec, should_stop=lambda: True)
    attrs = study.trials[0].user_attrs
    assert study.trials[0].state == TrialState.FAIL
    assert (attrs["interrupted"], attrs["final_failure"]) == (True, False)


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_a_pruner_stops_a_hopeless_trial(pruner: str, tmp_path: Path) -> None:
    spec = runner_spec(
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
    spec = runner_spec(
        search_space={"l1": {"choices": [0.05, 5.0]}, "l2": 0.0, "method": "proximal"}
    )
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
    spec = runner_spec()
    study = study_for(spec, tmp_path)
    trial = study.ask()

    def unreachable(*args: object, **kwargs: object) -> None:
        raise sa.exc.OperationalError("SELECT 1", {}, ConnectionError("server closed"))

    monkeypatch.setattr("regcore.worker.runner.build_workload", unreachable)
    with pytest.raises(sa.exc.OperationalError):
        run_trial(study, trial, spec)

    frozen = study.trials[trial.number]
    assert frozen.state == TrialState.RUNNING  # left for the worker to settle
    assert "final_failure" not in frozen.user_attrs


# ---- learning curves -------------------------------------------------------------------------


def curves_of(study: optuna.Study, number: int = -1) -> dict[str, list[float | None]]:
    curves: dict[str, list[float | None]] = study.trials[number].user_attrs["curves"]
    return curves


def test_a_complete_trial_records_its_curves_one_entry_per_epoch(tmp_path: Path) -> None:
    spec = runner_spec()
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.COMPLETE
    trial = study.trials[0]
    curves = curves_of(study)
    assert set(curves) == {"train_loss", "val_loss"}  # val_loss is the objective too: once
    assert len(curves["train_loss"]) == len(curves["val_loss"]) == trial.user_attrs["epochs_run"]
    assert curves["val_loss"][-1] == trial.value
    assert curves["train_loss"][-1] == trial.user_attrs["train_loss"]


def test_the_curves_hold_what_went_to_the_pruner(tmp_path: Path) -> None:
    spec = runner_spec(pruner={"name": "median"})
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.COMPLETE
    trial = study.trials[0]
    assert curves_of(study)["val_loss"] == [trial.intermediate_values[e] for e in range(3)]


def test_the_curves_hold_the_first_objective(tmp_path: Path) -> None:
    spec = runner_spec(objectives=[{"metric": "val_r2", "direction": "maximize"}])
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.COMPLETE
    curves = curves_of(study)
    assert set(curves) == {"train_loss", "val_loss", "val_r2"}
    assert all(len(values) == 3 for values in curves.values())
    assert curves["val_r2"][-1] == study.trials[0].value


def test_a_pruned_trial_records_its_curves_up_to_the_pruning_epoch(tmp_path: Path) -> None:
    spec = runner_spec(
        search_space={"l1": {"choices": [0.0, 50.0]}, "l2": 0.0, "method": "proximal"},
        training={"epochs": 4, "batch_size": 16, "device": "cpu"},
        pruner={"name": "median", "options": {"n_startup_trials": 1}},
    )
    study = study_for(spec, tmp_path)
    study.enqueue_trial({"l1": 0.0})
    assert run_trial(study, study.ask(), spec) == TrialState.COMPLETE
    study.enqueue_trial({"l1": 50.0})  # zeroes every weight: worse than the first at once
    assert run_trial(study, study.ask(), spec) == TrialState.PRUNED
    pruned = study.trials[-1]
    curves = curves_of(study)
    epochs_run = pruned.user_attrs["epochs_run"]
    assert epochs_run < 4
    assert len(curves["train_loss"]) == len(curves["val_loss"]) == epochs_run
    assert curves["val_loss"] == [pruned.intermediate_values[e] for e in range(epochs_run)]


def test_a_diverging_trial_records_its_curves_until_it_diverged(tmp_path: Path) -> None:
    # One full-batch SGD step an epoch, far past the stable lr: the loss grows ~10¹¹-fold a
    # step; the validation loss overflows float32 first (in epoch 4), which ends the trial.
    spec = runner_spec(
        optimizer={"name": "sgd", "lr": 1e5},
        search_space={"l1": 0, "l2": 0, "method": "fused"},
        training={"epochs": 8, "batch_size": 200, "device": "cpu"},
    )
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.FAIL
    attrs = study.trials[0].user_attrs
    epochs_run = attrs["epochs_run"]
    assert attrs["fail_reason"].startswith(f"diverged: val_loss became inf in epoch {epochs_run}")
    curves = curves_of(study)
    assert 1 <= epochs_run < 8
    assert len(curves["val_loss"]) == len(curves["train_loss"]) == epochs_run
    train = [v for v in curves["train_loss"] if v is not None and math.isfinite(v)]
    assert len(train) == epochs_run  # the training loss was still finite
    assert train == sorted(train)  # growing
    assert curves["val_loss"][-1] is None  # the overflow, in the last epoch that ran


def test_a_trial_diverging_in_its_first_epoch_still_has_curves(tmp_path: Path) -> None:
    spec = runner_spec(
        optimizer={"name": "sgd", "lr": 1e30},
        search_space={"l1": 0, "l2": 0, "method": "fused"},
        training={"epochs": 3, "batch_size": 20, "device": "cpu"},
    )
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.FAIL
    assert curves_of(study) == {"train_loss": [None]}


def test_a_non_finite_validation_loss_shows_as_none_in_the_curves(tmp_path: Path) -> None:
    spec = runner_spec(workload={"name": NonFiniteValidation.name, "params": {"n_samples": 200}})
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.FAIL
    curves = curves_of(study)
    assert curves["val_loss"] == [None]  # stored as JSON: NaN is no JSON number
    assert all(v is not None and math.isfinite(v) for v in curves["train_loss"])


# ---- the spec's loop settings and searched parameters reach the trial -----------------------


def test_searched_workload_params_reach_the_workload(tmp_path: Path) -> None:
    spec = runner_spec(
        search_space={
            "l1": 0.0,
            "l2": 0.0,
            "method": "fused",
            "params": {
                "n_features": {"low": 5, "high": 9, "int": True},
                "noise": {"choices": [0.0]},
            },
        },
        training={"epochs": 1, "batch_size": 200, "device": "cpu"},
    )
    study = study_for(spec, tmp_path)
    artifacts = tmp_path / "artifacts"
    assert run_trial(study, study.ask(), spec, artifact_dir=artifacts) == TrialState.COMPLETE
    trial = study.trials[0]
    n_features = trial.params["n_features"]
    assert type(n_features) is int
    assert 5 <= n_features <= 9
    assert trial.params["noise"] == 0.0
    # The model was built from the searched value (its weights are kept as the best so far).
    weights = torch.load(artifacts / trial.user_attrs["weights_artifact"], weights_only=True)
    assert weights["weight"].shape == (1, n_features)


def test_a_searched_param_and_the_fixed_ones_build_the_same_workload(tmp_path: Path) -> None:
    """A value searched from a single choice trains exactly as the same value fixed in
    workload.params does."""
    fixed = runner_spec(
        workload={
            "name": "sparse_regression",
            "params": {"n_samples": 200, "n_features": 12, "n_informative": 3},
        }
    )
    searched = runner_spec(
        search_space={
            "l1": {"choices": [0.05]},
            "l2": 0.0,
            "method": "proximal",
            "params": {"n_features": {"choices": [12]}},
        }
    )
    values = []
    for index, spec in enumerate((fixed, searched)):
        (tmp_path / str(index)).mkdir()
        study = study_for(spec, tmp_path / str(index))
        assert run_trial(study, study.ask(), spec) == TrialState.COMPLETE
        values.append(study.trials[0].value)
    assert values[0] == values[1]


def test_the_loop_settings_of_a_spec_train_a_trial(tmp_path: Path) -> None:
    spec = runner_spec(
        optimizer={
            "name": "sgd",
            "lr": 0.05,
            "momentum": 0.9,
            "nesterov": True,
            "lr_mult": {"bias": 0.5},
        },
        training={
            "epochs": 3,
            "batch_size": 32,
            "device": "cpu",
            "scheduler": {"name": "cosine", "warmup_epochs": 1, "min_lr_ratio": 0.1},
            "clip_grad_norm": 1.0,
        },
        regularize={"exclude": ["bias"]},
    )
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.COMPLETE
    attrs = study.trials[0].user_attrs
    assert attrs["epochs_run"] == 3
    assert math.isfinite(attrs["val_loss"])


def test_an_lr_mult_pattern_that_matches_no_parameter_fails_the_trial(tmp_path: Path) -> None:
    spec = runner_spec(optimizer={"name": "adam", "lr": 0.03, "lr_mult": {"head.*": 0.1}})
    study = study_for(spec, tmp_path)
    assert run_trial(study, study.ask(), spec) == TrialState.FAIL
    attrs = study.trials[0].user_attrs
    assert attrs["fail_reason"].startswith("invalid: optimizer.lr_mult patterns ['head.*']")
    assert "weight, bias" in attrs["fail_reason"]  # the model's parameter names
    assert attrs["final_failure"] is True


def test_train_config_maps_every_loop_setting_of_the_spec() -> None:
    spec = runner_spec(
        optimizer={
            "name": "sgd",
            "lr": 0.05,
            "momentum": 0.8,
            "nesterov": True,
            "lr_mult": {"weight": 0.5},
        },
        training={
            "epochs": 4,
            "batch_size": 16,
            "seed": 7,
            "device": "cpu",
            "precision": "bf16",
            "scheduler": {"name": "plateau", "warmup_epochs": 1, "patience": 2, "gamma": 0.3},
            "clip_grad_norm": 2.5,
            "num_workers": 3,
        },
        regularize={"exclude": ["*.bias"], "only": ["weight"]},
        objectives=[{"metric": "val_r2", "direction": "maximize"}],
    )
    config = train_config(spec, lr=0.02)
    assert config == TrainConfig(
        epochs=4,
        batch_size=16,
        optimizer="sgd",
        lr=0.02,  # the trial's (searched) lr, not optimizer.lr
        momentum=0.8,
        nesterov=True,
        betas=None,
        lr_mult={"weight": 0.5},
        scheduler=SchedulerSpec(name="plateau", warmup_epochs=1, patience=2, gamma=0.3),
        clip_grad_norm=2.5,
        num_workers=3,
        exclude=["*.bias"],
        only=["weight"],
        seed=7,
        device="cpu",
        precision="bf16",
        monitor="val_r2",
        maximize=True,
    )
    adam = train_config(runner_spec(optimizer={"name": "adam", "betas": [0.8, 0.9]}), lr=0.1)
    assert (adam.optimizer, adam.betas, adam.momentum, adam.nesterov) == (
        "adam",
        (0.8, 0.9),
        None,
        None,
    )


def test_every_loop_setting_of_the_spec_has_its_place_in_train_config() -> None:
    """A field added to the spec's optimizer, training or regularize section without reaching
    the loop fails here."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    renamed = {"name": "optimizer"}
    for section in (OptimizerSpec, TrainingSpec, RegularizeSpec):
        for name in section.model_fields:
            assert renamed.get(name, name) in fields, f"{section.__name__}.{name}"
