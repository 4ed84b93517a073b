"""Path mode through real worker processes: the dense start, each class's warm-started points,
the re-train of the best point from scratch, and the budget over all of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from regcore.spec import SweepSpec, parse_spec
from worker.local import LocalOptions, run_local_sweep
from worker.path import FINISHED, HOLDER, take_path

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
            "options": {"points": 4, "epochs_fraction": 0.25, "stop_after_worse": 4},
        },
        "budget": {"n_trials": 40},
    }
    data.update(overrides)
    return parse_spec(data)


def run(spec: SweepSpec, tmp_path: Path, workers: int = 1) -> optuna.Study:
    url = f"sqlite:///{tmp_path / 'path.db'}"
    result = run_local_sweep(spec, LocalOptions(storage_url=url, workers=workers))
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
    (retrain,) = [t for t in trials if "path_retrain" in t.user_attrs]
    walked = [t for t in trials if t.user_attrs.get("path_step", 0) >= 1]
    best = min(walked, key=lambda t: t.value)
    assert retrain.user_attrs["path_retrain"] == best.number
    assert retrain.params == best.params
    assert retrain.user_attrs["epochs_run"] == 12
    assert "warm_start" not in retrain.user_attrs
    assert study.user_attrs[FINISHED] is True


def test_a_path_stops_at_the_budget(tmp_path: Path) -> None:
    study = run(make_spec(budget={"n_trials": 3}), tmp_path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert FINISHED not in study.user_attrs


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
    study = run(make_spec(), tmp_path, workers=2)
    assert len([t for t in study.trials if "path_retrain" in t.user_attrs]) == 1
    assert len([t for t in study.trials if t.user_attrs.get("path_step") == 0]) == 1
