"""A worker loads what its trials need: a built-in MLP trial on the digits runs without
scikit-learn, scipy or pandas in the worker (bench/worker_memory.py measures its RSS)."""

from __future__ import annotations

from pathlib import Path

import pytest

from regcore.spec import parse_spec
from regcore.worker.local import LocalOptions, run_local_sweep
from regcore.worker.options import WorkerOptions
from regcore.workloads import load_plugin_modules

PLUGINS = ("tests.plugins.workloads",)


@pytest.mark.parametrize("population", [1, 2])
def test_a_digits_mlp_trial_runs_without_scikit_learn_in_the_worker(
    population: int, tmp_path: Path
) -> None:
    load_plugin_modules(PLUGINS)
    spec = parse_spec(
        {
            "name": "memory",
            "workload": {"name": "test_facts_mlp", "params": {"hidden": [64], "train_size": 150}},
            "search_space": {"l1": 0.0, "l2": {"choices": [1e-4, 1e-3]}, "method": "fused"},
            "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"epochs": 2, "batch_size": 32, "device": "cpu"},
            "sampler": {"name": "grid"},
            "budget": {"n_trials": 3},
            "execution": {"population": population},
            "confirm": False,
        }
    )
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    options = LocalOptions(worker=WorkerOptions(database_url=url, plugins=PLUGINS))
    run = run_local_sweep(spec, options)
    assert run.outcome == "completed"
    trials = run.study.get_trials(deepcopy=False)
    assert len(trials) == 3
    for trial in trials:
        for module in ("sklearn", "scipy", "pandas"):
            assert trial.user_attrs[f"loaded:{module}"] == 0.0, module
