"""What a worker runs next (worker/claims.py's Planner), on a real SQLite database: the
search's trials under the exact budget, the sweep passed over while others run its last
trials, its end once nothing runs, and the ends a planner decides instead of work."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa

from regcore.spec import parse_spec
from regcore.store import create_engine_and_storage, register_worker, upgrade_database
from regcore.sweeps.studies import create_sweep
from regcore.trial_kinds import BASELINE
from regcore.worker.claims import End, Planner, Work

optuna.logging.set_verbosity(optuna.logging.WARNING)


def spec_data(name: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "workload": {"name": "sparse_regression", "params": {"n_samples": 64, "n_features": 16}},
        "search_space": {"l1": {"low": 1e-4, "high": 1e-1, "log": True}, "l2": 0},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "training": {"epochs": 1, "device": "cpu"},
        "budget": {"n_trials": 2},
        "confirm": False,
        **changes,
    }


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'plan.db'}"
        upgrade_database(url)
        self.engine, self.storage = create_engine_and_storage(
            url, pool_size=2, heartbeat_s=30, grace_s=60
        )
        self.worker_id = register_worker(self.engine, host="test", pid=os.getpid(), device="cpu").id

    def planner(self, **changes: Any) -> Planner:
        options: dict[str, Any] = {
            "device": "cpu",
            "grace_s": 60.0,
            "max_retries": 2,
            "idle_poll_s": 60.0,
        }
        return Planner(engine=self.engine, storage=self.storage, **{**options, **changes})

    def submit(self, **changes: Any) -> str:
        return create_sweep(self.engine, self.storage, parse_spec(spec_data(**changes))).id


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    setup = Setup(tmp_path)
    yield setup
    setup.storage.engine.dispose()
    setup.engine.dispose()


def tell(work: Work) -> None:
    for trial in work.trials:
        trial.study.tell(trial, 1.0)


def test_no_sweep_means_nothing_to_run(setup: Setup) -> None:
    assert setup.planner().next(setup.worker_id) is None


def test_the_search_runs_its_budget_then_the_sweep_ends(setup: Setup) -> None:
    sweep_id = setup.submit(name="plain")
    planner = setup.planner()
    first = planner.next(setup.worker_id)
    assert isinstance(first, Work)
    assert (first.how, first.sweep.id, first.size) == ("single", sweep_id, 1)
    assert first.trials[0].user_attrs.get(BASELINE) is True  # the λ = 0 baseline first
    second = planner.next(setup.worker_id)
    assert isinstance(second, Work)
    assert second.trials[0].number == 1
    tell(first)
    tell(second)
    assert planner.next(setup.worker_id) == End(sweep_id, "completed")


def test_a_sweep_whose_last_trials_run_elsewhere_is_passed_over_for_now(setup: Setup) -> None:
    setup.submit(name="taken", budget={"n_trials": 1})
    planner = setup.planner()
    assert isinstance(planner.next(setup.worker_id), Work)  # the only trial, running
    assert planner.next(setup.worker_id) == "later"  # not over: its trial still runs
    assert planner.next(setup.worker_id) is None  # passed over for idle_poll_s


def test_a_population_claims_k_search_trials_at_once(setup: Setup) -> None:
    setup.submit(name="population", budget={"n_trials": 4}, execution={"population": 3})
    work = setup.planner().next(setup.worker_id)
    assert isinstance(work, Work)
    assert (work.how, work.size, len(work.trials)) == ("population", 3, 3)


def test_a_sweep_past_its_timeout_ends_instead_of_running(setup: Setup) -> None:
    sweep_id = setup.submit(name="slow", budget={"n_trials": 5, "timeout_s": 60})
    planner = setup.planner()
    assert isinstance(planner.next(setup.worker_id), Work)  # claimed: it started now
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with setup.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE sweeps SET started_at = :t WHERE id = :id"),
            {"t": an_hour_ago, "id": sweep_id},
        )
    assert planner.next(setup.worker_id) == End(sweep_id, "deadline_reached")


def test_a_planner_for_one_sweep_claims_no_other(setup: Setup) -> None:
    setup.submit(name="other")
    mine = setup.submit(name="mine")
    work = setup.planner(only=mine).next(setup.worker_id)
    assert isinstance(work, Work)
    assert work.sweep.id == mine
