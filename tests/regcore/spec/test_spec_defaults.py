"""What a spec that names no sampler or pruner runs: a path where the space allows one
(bench/time_to_lambda.py measured it), else TPE; no pruner either way; a confirmation."""

from __future__ import annotations

from typing import Any

import pytest

from regcore.spec import parse_spec
from regcore.workloads import load_plugin_modules

load_plugin_modules(["tests.plugins.functions"])  # test_linear (cold) and test_fragile (warm)

LOG = {"low": 1e-5, "high": 1e-1, "log": True}
BASE: dict[str, Any] = {
    "name": "defaults",
    "workload": {"name": "sparse_regression"},
    "search_space": {"l1": LOG, "l2": LOG},
}


def strategy(**changes: Any) -> tuple[str, str]:
    spec = parse_spec({**BASE, **changes})
    return spec.sampler.name, spec.pruner.name


def test_lambda_as_log_ranges_alone_walks_a_path_without_pruning() -> None:
    assert strategy() == ("path", "none")
    assert strategy(search_space={"l1": 0.0, "l2": LOG}) == ("path", "none")
    assert parse_spec(BASE).confirm.enabled


@pytest.mark.parametrize(
    "changes",
    [
        {"search_space": {"l1": LOG, "l2": LOG, "lr": {"low": 1e-3, "high": 1e-1, "log": True}}},
        {"search_space": {"l1": LOG, "l2": LOG, "params": {"noise": {"low": 0.1, "high": 1.0}}}},
        {"search_space": {"l1": {"choices": [0, 1e-3]}, "l2": LOG}},
        {"search_space": {"l1": 0.0, "l2": {"low": 0.0, "high": 0.1}}},
        {"execution": {"population": 4}},
        {"workload": {"name": "test_linear"}},  # a training function without warm starts
    ],
    ids=["lr searched", "params searched", "choices", "linear range", "population", "cold"],
)
def test_a_space_a_path_cannot_walk_is_sampled_by_tpe_without_pruning(
    changes: dict[str, Any],
) -> None:
    assert strategy(**changes) == ("tpe", "none")


def test_a_training_function_that_takes_warm_starts_walks_a_path() -> None:
    fragile = {"name": "test_fragile"}
    assert strategy(workload=fragile, search_space={"l1": 0.0, "l2": LOG}) == ("path", "none")


def test_what_a_spec_names_stays_and_a_seed_alone_keeps_the_default() -> None:
    spec = parse_spec({**BASE, "sampler": {"seed": 3}})
    assert (spec.sampler.name, spec.sampler.seed) == ("path", 3)
    assert strategy(sampler={"name": "tpe"}) == ("tpe", "none")
    assert strategy(pruner={"name": "median"}) == ("path", "median")
    # Options without a name are the options of TPE and Hyperband, as they always were.
    assert strategy(sampler={"options": {"n_startup_trials": 3}}) == ("tpe", "none")
    assert strategy(pruner={"options": {"min_resource": 2}}) == ("path", "hyperband")
