"""examples/transformers: a small BERT fine-tuned by HF's Trainer as a training function,
swept by ``regsweep run`` and through the service (real worker processes): TrialCallback
reports each epoch's evaluation, the median pruner stops the trials that cannot learn, and
the trial records what the Regularize callback's Regularizer did to the weights."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.regcore.integrations.examples import (
    example_spec,
    plugin_env,
    regsweep_run,
    through_the_service,
)

pytest.importorskip("transformers")

ENV = plugin_env("transformers", "tiny_bert")


def small() -> dict[str, object]:
    data = example_spec("transformers")
    data["training"] = {"epochs": 2, "seed": 0, "device": "cpu"}
    data["workload"]["params"] = {"n_train": 64, "n_val": 64}  # type: ignore[index]
    return data


def test_the_example_through_regsweep_run_prunes_and_records(tmp_path: Path) -> None:
    data = small()
    # Random points and an lr that cannot learn for some: the median pruner stops those.
    data["search_space"]["lr"] = {"choices": [1.0e-6, 1.0e-2]}  # type: ignore[index]
    data["sampler"] = {"name": "random", "seed": 1}
    data["pruner"] = {"name": "median", "options": {"n_startup_trials": 2, "n_warmup_steps": 0}}
    data["budget"] = {"n_trials": 4}
    trials = regsweep_run(tmp_path, data, ENV)
    states = [t.state for t in trials]
    assert len(trials) == 4
    assert TrialState.PRUNED in states, states
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete
    for trial in complete:
        assert len(trial.user_attrs["curves"]["val_accuracy"]) == 2  # one report per epoch
        assert trial.user_attrs["curves"]["val_accuracy"][-1] == pytest.approx(trial.values[0])
        assert {"sparsity", "l1_norm"} <= set(trial.user_attrs)  # Regularize's Regularizer
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert all(t.params["lr"] == 1.0e-6 for t in pruned)


def test_the_example_through_the_service_with_two_workers(tmp_path: Path) -> None:
    data = {**small(), "name": "bert-service", "pruner": {"name": "none"}}
    data["budget"] = {"n_trials": 2}
    trials = through_the_service(tmp_path, data, ENV)
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial in trials:
        assert 0.0 <= trial["values"][0] <= 1.0  # val_accuracy
        assert "sparsity" in trial["user_attrs"]
