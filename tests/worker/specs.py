"""Specs and studies the worker tests build on: small, fast sweeps of the built-in workloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from regcore.spec import SweepSpec, parse_spec
from regcore.spec.suggest import create_pruner, create_sampler
from regcore.store import (
    create_storage,
)

SPARSE = {"n_samples": 400, "n_features": 40, "n_informative": 4, "noise": 0.3}


def queue_spec(**overrides: Any) -> SweepSpec:
    data: dict[str, Any] = {
        "name": "local-test",
        "workload": {"name": "sparse_regression", "params": SPARSE},
        "search_space": {
            "l1": {"low": 1e-3, "high": 1.0, "log": True},
            "l2": 0.0,
            "method": ["proximal", "loss"],
        },
        "optimizer": {"name": "adam", "lr": 0.03},
        "training": {"epochs": 3, "batch_size": 400, "device": "cpu"},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "budget": {"n_trials": 5},
        "confirm": False,  # the queue's tests; tests/worker/test_confirm_trials.py confirms
    }
    data.update(overrides)
    return parse_spec(data)


def runner_spec(**overrides: Any) -> SweepSpec:
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
        "sampler": {"name": "tpe", "seed": 0},  # sampled, not walked as a path
        "confirm": False,
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


def population_spec(**changes: Any) -> SweepSpec:
    data: dict[str, Any] = {
        "name": "population",
        "workload": {"name": "sparse_regression", "params": {"n_samples": 120, "n_features": 10}},
        "search_space": {"l1": {"low": 1e-3, "high": 1e-1, "log": True}, "l2": 0.0},
        "optimizer": {"lr": 0.05},
        "training": {"epochs": 4, "batch_size": 40, "device": "cpu"},
        "pruner": {"name": "none"},
        "sampler": {"name": "random", "seed": 0},
        "execution": {"population": 4},
        "budget": {"n_trials": 10},
        "confirm": False,
    }
    return parse_spec({**data, **changes})
