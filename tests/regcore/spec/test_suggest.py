"""A spec in Optuna's terms: suggestions, the baseline point, samplers and pruners."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

from regcore.spec import SweepSpec, parse_spec
from regcore.spec.suggest import baseline_params, create_pruner, create_sampler, suggest

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_spec(**overrides: Any) -> SweepSpec:
    data: dict[str, Any] = {
        "name": "suggest-test",
        "workload": {"name": "sparse_regression"},
        "search_space": {
            "l1": {"low": 1e-5, "high": 1e-1, "log": True},
            "l2": {"choices": [0.0, 1e-3]},
            "method": ["weight_decay", "proximal"],
            "lr": {"low": 1e-4, "high": 1e-1, "log": True},
        },
    }
    data.update(overrides)
    return parse_spec(data)


def sample(spec: SweepSpec, n: int = 12) -> optuna.Study:
    study = optuna.create_study(
        directions=spec.directions, sampler=create_sampler(spec), pruner=create_pruner(spec)
    )
    for _ in range(n):
        trial = study.ask()
        point = suggest(trial, spec)
        study.tell(trial, [point.l1 + point.l2 + point.lr] * len(spec.directions))
    return study


def test_the_space_is_conditional_on_the_method_class() -> None:
    study = sample(make_spec(sampler={"name": "random", "seed": 1}), n=20)
    classes = {t.params["method_class"] for t in study.trials}
    assert classes == {"penalty", "proximal"}
    for t in study.trials:
        assert ("l1" in t.params) == (t.params["method_class"] == "proximal")
        assert t.params["l2"] in (0.0, 1e-3)
        assert 1e-4 <= t.params["lr"] <= 1e-1


def test_fixed_values_are_not_parameters() -> None:
    spec = make_spec(search_space={"l1": 1e-3, "l2": 0.0, "method": "fused"})
    trial = optuna.create_study().ask()
    point = suggest(trial, spec)
    assert (point.method, point.l1, point.l2, point.lr) == ("fused", 1e-3, 0.0, 1e-3)
    assert trial.params == {}


def test_methods_of_one_class_are_sampled_once_and_the_cheapest_runs() -> None:
    spec = make_spec(
        search_space={
            "l1": {"low": 1e-5, "high": 1e-1, "log": True},
            "l2": 1e-3,
            "method": ["loss", "hook", "fused", "decoupled"],
        },
        sampler={"name": "random", "seed": 0},
    )
    assert spec.method_classes == {
        "penalty": ("loss", "hook", "fused"),
        "decoupled": ("decoupled",),
    }
    costs = {"loss": 1.0, "hook": 3.0, "fused": 2.0, "decoupled": 9.0}
    study = optuna.create_study(sampler=create_sampler(spec))
    ran = set()
    for _ in range(12):
        trial = study.ask()
        point = suggest(trial, spec, costs=costs)
        study.tell(trial, 1.0)
        assert trial.distributions["method_class"].choices == ("penalty", "decoupled")
        ran.add((point.method_class, point.method))
    assert ran == {("penalty", "loss"), ("decoupled", "decoupled")}


def test_plain_sgd_makes_decoupled_one_class_with_the_penalty() -> None:
    spec = make_spec(
        search_space={"l1": 1e-4, "l2": 1e-3, "method": ["loss", "decoupled"]},
        optimizer={"name": "sgd", "lr": 0.1},
    )
    assert spec.method_classes == {"penalty": ("loss", "decoupled")}
    trial = optuna.create_study().ask()
    assert suggest(trial, spec).method == "loss"  # no probe: METHOD_TABLE.cost_rank
    assert trial.params == {}


def test_validate_notes_name_the_methods_sampled_as_one() -> None:
    spec = make_spec(search_space={"l1": 1e-4, "l2": 1e-3, "method": ["loss", "hook", "proximal"]})
    (note,) = spec.notes()
    assert "loss, hook are one regularizer (penalty)" in note
    assert "list one of them to pin it" in note
    assert make_spec().notes() == []


def test_a_baseline_samples_no_lambda_its_space_cannot_hold() -> None:
    spec = make_spec()  # l1 a log range (cannot be 0), l2 choices with 0
    params = baseline_params(spec)
    assert params == {"l2": 0.0}
    study = optuna.create_study(sampler=create_sampler(spec))
    study.enqueue_trial(params, user_attrs={"baseline": True})
    trial = study.ask()
    point = suggest(trial, spec)
    assert (point.l1, point.l2, point.method_class) == (0.0, 0.0, "none")
    assert set(trial.params) == {"l2", "lr"}  # what it trained with, and nothing else
    assert trial.params["l2"] == 0.0


def test_a_baseline_with_the_grid_sampler_fixes_every_grid_dimension() -> None:
    spec = make_spec(
        search_space={
            "l1": {"choices": [1e-4, 1e-3]},
            "l2": {"choices": [0.0, 1e-2]},
            "method": ["fused", "proximal"],
            "lr": {"choices": [1e-3, 1e-2]},
        },
        sampler={"name": "grid"},
    )
    study = optuna.create_study(sampler=create_sampler(spec))
    study.enqueue_trial(baseline_params(spec), user_attrs={"baseline": True})
    trial = study.ask()
    point = suggest(trial, spec)
    assert (point.l1, point.l2, point.lr) == (0.0, 0.0, 1e-3)
    assert trial.params == {"l2": 0.0, "lr": 1e-3}


@pytest.mark.parametrize("name", ["tpe", "random", "gp", "cmaes", "qmc", "nsga2"])
def test_every_sampler_samples_the_space(name: str) -> None:
    study = sample(make_spec(sampler={"name": name, "seed": 0}), n=6)
    assert len(study.trials) == 6


def test_grid_sampler_walks_the_listed_values_and_goes_on_past_them() -> None:
    spec = make_spec(
        search_space={
            "l1": {"choices": [0.0, 1e-3]},
            "l2": {"choices": [0.0, 1e-2]},
            "method": ["weight_decay", "proximal"],
        },
        sampler={"name": "grid"},
    )
    study = sample(spec, n=10)  # 8 grid points, then repeats rather than Study.stop()
    points = {(t.params["method_class"], t.params.get("l1"), t.params["l2"]) for t in study.trials}
    expected = {("penalty", None, l2) for l2 in (0.0, 1e-2)} | {
        ("proximal", l1, l2) for l1 in (0.0, 1e-3) for l2 in (0.0, 1e-2)
    }
    assert points == expected


def test_two_objectives_with_nsga2() -> None:
    spec = make_spec(
        objectives=[
            {"metric": "val_loss", "direction": "minimize"},
            {"metric": "sparsity", "direction": "maximize"},
        ],
        sampler={"name": "nsga2", "seed": 0},
    )
    assert len(sample(spec, n=5).trials) == 5


@pytest.mark.parametrize(
    ("pruner", "cls"),
    [
        ({"name": "none"}, optuna.pruners.NopPruner),
        ({"name": "median"}, optuna.pruners.MedianPruner),
        ({"name": "percentile", "options": {"percentile": 25}}, optuna.pruners.PercentilePruner),
        ({"name": "hyperband"}, optuna.pruners.HyperbandPruner),
        ({"name": "successive_halving"}, optuna.pruners.SuccessiveHalvingPruner),
    ],
)
def test_every_pruner_is_created(pruner: dict[str, Any], cls: type) -> None:
    assert isinstance(create_pruner(make_spec(pruner=pruner)), cls)


@pytest.mark.parametrize("name", ["random", "tpe"])
def test_workers_with_the_same_seed_draw_different_points_reproducibly(name: str) -> None:
    # Two workers build their own sampler from one spec and ask in turn in one study.
    spec = make_spec(sampler={"name": name, "seed": 3})

    def two_workers() -> list[dict[str, Any]]:
        storage = optuna.storages.InMemoryStorage()
        a, b = (
            optuna.create_study(
                storage=storage, study_name="s", sampler=create_sampler(spec), load_if_exists=True
            )
            for _ in range(2)
        )
        for i in range(6):
            study = (a, b)[i % 2]
            trial = study.ask()
            point = suggest(trial, spec)
            study.tell(trial, point.l1 + point.l2 + point.lr)
        return [t.params for t in a.trials]

    points = two_workers()
    assert len({tuple(sorted(p.items())) for p in points}) == 6  # no point drawn twice
    assert two_workers() == points  # the same seed, the same sweep
