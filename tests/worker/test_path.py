"""Path mode through real worker processes: the dense start, each class's warm-started points,
the re-train of the best point from scratch, and the budget over all of them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from regcore.confirm import confirmation
from regcore.spec import SweepSpec, parse_spec
from regcore.worker.claims import take_path
from regcore.worker.local import LocalOptions, run_local_sweep
from regcore.worker.options import WorkerOptions
from regcore.worker.path import FINISHED, HOLDER
from regcore.workloads import load_plugin_modules

PLUGINS = ("tests.plugins.functions",)
load_plugin_modules(PLUGINS)  # this process reads the specs too

SPARSE = {"n_samples": 300, "n_features": 30, "n_informative": 4, "noise": 0.3}


def make_spec(**overrides: Any) -> SweepSpec:
    data: dict[str, Any] = {
        "name": "path-test",
        "workload": {"name": "sparse_regression", "params": SPARSE},
        "search_space": {
            "l1": {"low": 1e-4, "high": 1.0, "log": True},
            "l2": {"low": 1e-5, "high": 1e-1, "log": True},
            "method": ["loss", "proximal"],
        },
        "optimizer": {"name": "adam", "lr": 0.03},
        "training": {"epochs": 12, "batch_size": 100, "device": "cpu"},
        "sampler": {
            "name": "path",
            "options": {
                "points": 4,
                "epochs_fraction": 0.25,
                "stop_after_worse": 4,
                "ratios": 1,
                "retrain": 1,
            },
        },
        "budget": {"n_trials": 40},
        "confirm": False,
    }
    data.update(overrides)
    return parse_spec(data)


def run(
    spec: SweepSpec, tmp_path: Path, workers: int = 1, plugins: tuple[str, ...] = ()
) -> optuna.Study:
    tmp_path.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp_path / 'path.db'}"
    options = LocalOptions(worker=WorkerOptions(database_url=url, plugins=plugins), workers=workers)
    result = run_local_sweep(spec, options)
    assert result.outcome == "completed"
    return result.study


def test_a_path_walks_each_class_from_the_dense_start_and_retrains_its_best(
    tmp_path: Path,
) -> None:
    study = run(make_spec(), tmp_path)
    trials = study.trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    dense = trials[0]
    assert (dense.user_attrs["baseline"], dense.user_attrs["path_step"]) == (True, 0)
    assert (dense.user_attrs["l1"], dense.user_attrs["l2"], dense.params) == (0.0, 0.0, {})
    assert dense.user_attrs["epochs_run"] == 12
    for cls in ("penalty", "proximal"):
        points = [
            t for t in trials if t.params.get("method_class") == cls and "path_step" in t.user_attrs
        ]
        assert [t.user_attrs["path_step"] for t in points] == [1, 2, 3, 4]
        # Each starts from the one before; the first from the dense start.
        assert [t.user_attrs["warm_start"] for t in points] == [
            dense.number,
            *(t.number for t in points[:-1]),
        ]
        assert [t.params["l1"] for t in points] == sorted(t.params["l1"] for t in points)
        assert all(t.user_attrs["epochs_run"] <= 3 for t in points)  # 25 % of 12 epochs
        # Warm: the first point's first epoch starts where the dense start ended, not at random.
        first_loss = points[0].user_attrs["curves"]["train_loss"][0]
        assert first_loss < dense.user_attrs["curves"]["train_loss"][0] / 5
    retrains = [t for t in trials if "path_retrain" in t.user_attrs]
    walked = [t for t in trials if t.user_attrs.get("path_step", 0) >= 1]
    best = min(walked, key=lambda t: t.value)
    retrain = retrains[0]  # the best point first; a smaller λ after it only if it lost
    assert retrain.user_attrs["path_retrain"] == best.number
    assert retrain.params == best.params
    assert retrain.user_attrs["epochs_run"] == 12
    assert "warm_start" not in retrain.user_attrs
    assert study.user_attrs[FINISHED] is True


def test_a_path_keeps_budget_for_its_retrain_from_scratch(tmp_path: Path) -> None:
    study = run(make_spec(budget={"n_trials": 3}), tmp_path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    kinds = [("path_step" in t.user_attrs, "path_retrain" in t.user_attrs) for t in study.trials]
    assert kinds == [(True, False), (True, False), (False, True)]  # dense, a point, re-train


def test_only_one_live_worker_walks_a_path() -> None:
    study = optuna.create_study()
    assert take_path(study, "a", alive=lambda w: True)
    assert not take_path(study, "b", alive=lambda w: True)  # a is alive
    assert take_path(study, "a", alive=lambda w: True)  # its own again
    assert take_path(study, "b", alive=lambda w: False)  # a went silent: b takes over
    assert study.user_attrs[HOLDER] == "b"
    study.set_user_attr(FINISHED, True)
    assert not take_path(study, "b", alive=lambda w: True)


def test_two_workers_walk_one_path_once(tmp_path: Path) -> None:
    one = run(make_spec(), tmp_path / "one")
    two = run(make_spec(), tmp_path / "two", workers=2)
    assert len([t for t in two.trials if t.user_attrs.get("path_step") == 0]) == 1
    retrains = [[t.params for t in s.trials if "path_retrain" in t.user_attrs] for s in (one, two)]
    assert retrains[0] == retrains[1]  # the same points, whoever walks it


def test_the_best_class_walks_the_lambda_ratios_too(tmp_path: Path) -> None:
    options = {"points": 3, "epochs_fraction": 0.25, "ratios": 3, "retrain": 1}
    study = run(make_spec(sampler={"name": "path", "options": options}), tmp_path)
    walks = {t.user_attrs["path_walk"] for t in study.trials if "path_walk" in t.user_attrs}
    best_class = next(w for w in walks if " " in w).split(" ")[0]
    assert walks == {
        "penalty",
        "proximal",
        f"{best_class} λ₁:λ₂ 1:0",  # λ₁ alone (λ₂ stays at its low end)
        f"{best_class} λ₁:λ₂ 0:1",  # λ₂ alone
    }
    alone = [t for t in study.trials if t.user_attrs.get("path_walk", "").endswith("1:0")]
    assert {t.params["l2"] for t in alone} == {1e-5}
    assert sorted(t.params["l1"] for t in alone) == pytest.approx([1e-4, 1e-2, 1.0])


def fragile_spec(**options: Any) -> SweepSpec:
    return make_spec(
        name="fragile",
        workload={"name": "test_fragile", "params": options.pop("params", {})},
        search_space={"l1": 0.0, "l2": {"low": 1e-6, "high": 1e-1, "log": True}, "method": "fused"},
        optimizer={"lr": 0.01},
        training={"epochs": 2, "device": "cpu"},
        sampler={"name": "path", "options": {"points": 6, "retrain": 1, **options}},
        confirm={"seeds": 2, "top": 3},
    )


def test_a_lambda_only_a_warm_start_survives_is_never_recommended(tmp_path: Path) -> None:
    # test_fragile: warm-started, λ₂ = 0.1 looks best (0.35); from scratch it gives ln 3.
    study = run(fragile_spec(), tmp_path, plugins=PLUGINS)
    retrains = [t for t in study.trials if "path_retrain" in t.user_attrs]
    # Down the walk from its warm best while from scratch does better: 1e-4 no longer does.
    assert [t.params["l2"] for t in retrains] == pytest.approx([1e-1, 1e-2, 1e-3, 1e-4])
    assert [t.value for t in retrains] == pytest.approx([math.log(3), math.log(3), 0.40, 0.42])
    result = confirmation(study)
    assert result is not None
    assert result.recommended is not None
    assert result.recommended.l2 == pytest.approx(1e-3)
    assert result.beats_baseline


def test_a_walk_goes_on_until_lambda_beats_the_dense_start(tmp_path: Path) -> None:
    # Warm-started below λ₂ = 1e-3 the values rise above the baseline's, point after point:
    # "2 worse in a row" would end the walk there, before the range where λ helps.
    spec = fragile_spec(stop_after_worse=2, params={"overfit_below": 1e-3})
    study = run(spec, tmp_path, plugins=PLUGINS)
    steps = [t.params["l2"] for t in study.trials if t.user_attrs.get("path_step", 0) >= 1]
    assert len(steps) == 6  # the whole walk: 1e-6 … 1e-1
    assert min(t.value for t in study.trials if "path_retrain" in t.user_attrs) == 0.40


def test_the_best_from_scratch_is_refined_by_half_steps_around_it(tmp_path: Path) -> None:
    # test_fragile from scratch: λ₂ = 1e-3 is best, worse on either side of it.
    study = run(fragile_spec(refine=4), tmp_path, plugins=PLUGINS)
    refined = [t for t in study.trials if "path_refine" in t.user_attrs]
    assert len(refined) == 4
    best = next(t for t in study.trials if t.user_attrs.get("path_retrain") and t.value == 0.40)
    assert {t.user_attrs["path_refine"] for t in refined} == {best.number}  # it never moved
    # Half a walk's step (1 decade here) up and down, then a quarter.
    steps = sorted(round(math.log10(t.params["l2"] / 1e-3), 3) for t in refined)
    assert steps == [-0.5, -0.25, 0.25, 0.5]
    assert all(t.value > 0.40 for t in refined)
