"""Population trials under real ``regsweep worker`` processes and the service: exact budgets
with two workers, a cancel, and a worker killed mid-population."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from regcore.store import count_trials, list_workers, request_cancel
from tests.product import Product
from tests.waiting import wait_until
from tests.worker.cluster import FAST, SLOW, Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path)
    yield c
    c.stop()


def population(base: dict[str, Any], k: int) -> dict[str, Any]:
    return {**base, "execution": {"population": k}}


def test_population_16_through_the_service_with_two_workers_ends_at_its_budget(
    tmp_path: Path,
) -> None:
    product = Product(f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path)
    body = {
        **population(FAST, 16),
        "name": "population-service",
        "search_space": {"l1": {"low": 1e-3, "high": 1e-1, "log": True}, "l2": 0.0},
        "pruner": {"name": "median", "options": {"n_startup_trials": 4}},
        "budget": {"n_trials": 40},
        "confirm": False,
    }
    try:
        product.start_service()
        created = product.client.post("/v1/sweeps", json=body)
        assert created.status_code == 201, created.text
        sweep_id = created.json()["id"]
        product.start_workers(2)
        wait_until(lambda: product.sweep(sweep_id)["status"] == "completed", 240, "the sweep")
        detail = product.sweep(sweep_id)
        trials = detail["trials"]
        assert trials["COMPLETE"] + trials["PRUNED"] == 40  # exactly the budget, no failure
        assert trials["RUNNING"] == trials["WAITING"] == 0
        page = product.client.get(f"/v1/sweeps/{sweep_id}/trials", params={"limit": 100})
        attrs = [t["user_attrs"] for t in page.json()["data"]]
        # Each trial records how many trained together: up to 16, fewer where a method's
        # trials were fewer (a population is one method's, and sized to its members).
        sizes = [a["population"] for a in attrs]
        assert all(1 <= k <= 16 for k in sizes)
        assert max(sizes) > 1
    finally:
        product.close()


def test_cancel_interrupts_every_member_of_the_population(cluster: Cluster) -> None:
    sweep = cluster.submit("population-cancel", 20, base=population(SLOW, 4))
    cluster.start_workers(1)
    wait_until(
        lambda: (
            len(cluster.study("population-cancel").get_trials(states=(TrialState.RUNNING,))) == 4
        ),
        120,
        "a population of four",
    )
    request_cancel(cluster.engine, sweep)
    wait_until(
        lambda: not cluster.study("population-cancel").get_trials(states=(TrialState.RUNNING,)),
        30,
        "the members to stop",
    )
    trials = cluster.study("population-cancel").trials
    assert Counter(t.state for t in trials) == {TrialState.FAIL: 4}
    assert all(t.user_attrs["fail_reason"].startswith("interrupted: stopped") for t in trials)


def test_a_vanished_workers_members_are_retried_within_the_budget(cluster: Cluster) -> None:
    sweep = cluster.submit("population-kill", 6, base=population(SLOW, 3))
    cluster.start_workers(2)

    def busy() -> list[Any]:
        return [w for w in list_workers(cluster.engine) if w.current_trial_number is not None]

    wait_until(lambda: bool(busy()), 120, "a worker training a population")
    victim = busy()[0]
    cluster.kill_machine(victim.pid)
    wait_until(lambda: cluster.status(sweep) == "completed", 240, "the sweep")
    trials = cluster.study("population-kill").trials
    assert count_trials(cluster.engine, "population-kill").finished == 6
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed  # the killed worker's members, failed as stale...
    assert all(t.user_attrs["fail_reason"].startswith("interrupted: its worker") for t in failed)
    retried = {t.user_attrs.get("retry_of") for t in trials} - {None}
    assert {t.number for t in failed} <= retried  # ...and run again
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 6
