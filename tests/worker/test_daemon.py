"""``regsweep worker`` processes against a real database: queue order, exact budgets, faults."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from regcore.store import (
    count_trials,
    get_sweep,
    list_workers,
    request_cancel,
)
from tests.waiting import wait_until
from tests.worker.cluster import SLOW, Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path)
    yield c
    c.stop()


def finished_states(study: optuna.Study) -> list[TrialState]:
    return [t.state for t in study.trials if t.state != TrialState.WAITING]


def test_higher_priority_finishes_first_and_budgets_are_exact(cluster: Cluster) -> None:
    low = cluster.submit("low", 12, priority=0)  # longer, so one slow trial of high can't lose
    high = cluster.submit("high", 6, priority=5)
    cluster.start_workers(3)
    wait_until(
        lambda: cluster.status(low) == cluster.status(high) == "completed", 180, "both sweeps"
    )
    assert get_sweep(cluster.engine, high).finished_at <= get_sweep(cluster.engine, low).finished_at
    for name, n_trials in (("low", 12), ("high", 6)):
        study = cluster.study(name)
        assert finished_states(study) == [TrialState.COMPLETE] * n_trials
        assert count_trials(cluster.engine, name).finished == n_trials


def test_a_killed_workers_trial_fails_and_is_retried_within_the_budget(cluster: Cluster) -> None:
    sweep = cluster.submit("kill-9", 3, base=SLOW)
    cluster.start_workers(2)
    wait_until(
        lambda: any(w.current_trial_number is not None for w in list_workers(cluster.engine)),
        120,
        "a running trial",
    )
    busy = next(w for w in list_workers(cluster.engine) if w.current_trial_number is not None)
    os.kill(busy.pid, signal.SIGKILL)
    killed = busy.current_trial_number
    assert killed is not None

    def state_of_killed() -> TrialState:
        return cluster.study("kill-9").trials[killed].state

    # Each step has its own bound (a trial takes a few seconds; the grace period is 4 s), so
    # a broken step fails in seconds, naming itself, instead of at a sweep-wide timeout.
    wait_until(lambda: state_of_killed() != TrialState.RUNNING, 45, "the trial to go stale")
    assert state_of_killed() == TrialState.FAIL
    attrs = cluster.study("kill-9").trials[killed].user_attrs
    assert attrs["fail_reason"] == (
        "interrupted: its worker stopped beating for over 4 s (killed, or its machine lost)"
    )
    assert attrs["final_failure"] is False

    def retries() -> list[optuna.trial.FrozenTrial]:
        trials = cluster.study("kill-9").trials
        return [t for t in trials if t.user_attrs.get("retry_of") == killed]

    wait_until(lambda: len(retries()) == 1, 10, "the killed trial's retry to be queued")
    wait_until(lambda: cluster.status(sweep) == "completed", 60, "the sweep to complete")
    study = cluster.study("kill-9")
    assert count_trials(cluster.engine, "kill-9").finished == 3
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 3
    (retried,) = retries()
    assert retried.params == study.trials[killed].params
    assert retried.state == TrialState.COMPLETE


def test_sigterm_finishes_the_running_trial_and_deregisters(cluster: Cluster) -> None:
    cluster.submit("sigterm", 2, base=SLOW)
    cluster.start_workers(1)
    wait_until(
        lambda: any(t.state == TrialState.RUNNING for t in cluster.study("sigterm").trials),
        120,
        "a running trial",
    )
    (process,) = cluster.workers
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    states = [t.state for t in cluster.study("sigterm").trials]
    assert TrialState.RUNNING not in states
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.FAIL) == 1
    assert list_workers(cluster.engine) == []


def test_cancel_stops_new_trials_and_the_running_one(cluster: Cluster) -> None:
    sweep = cluster.submit("cancel-me", 20, base=SLOW)
    cluster.start_workers(1)
    wait_until(
        lambda: any(t.state == TrialState.RUNNING for t in cluster.study("cancel-me").trials),
        120,
        "a running trial",
    )
    request_cancel(cluster.engine, sweep)
    wait_until(
        lambda: all(t.state != TrialState.RUNNING for t in cluster.study("cancel-me").trials),
        30,
        "the running trial to stop",
    )
    assert cluster.status(sweep) == "cancelled"
    started = len(cluster.study("cancel-me").trials)
    time.sleep(3)  # a worker that kept claiming would have started another trial by now
    assert len(cluster.study("cancel-me").trials) == started


def test_a_trial_lost_before_its_first_heartbeat_is_run_again(cluster: Cluster) -> None:
    """A claim that an outage cut short between asking for the trial and its first beat
    leaves a RUNNING trial without a heartbeat, which Optuna never fails as stale."""
    sweep = cluster.submit("orphan", 3)
    study = cluster.study("orphan")
    lost = study.ask()  # as a worker would, then lost before it could beat
    with cluster.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE trials SET datetime_start = :t WHERE trial_id = :i"),
            {"t": datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1), "i": lost._trial_id},
        )
    cluster.start_workers(1)
    wait_until(lambda: cluster.status(sweep) == "completed", 120, "the sweep")
    frozen = cluster.study("orphan").trials[lost.number]
    assert frozen.state == TrialState.FAIL
    assert frozen.user_attrs["fail_reason"] == ("interrupted: its worker lost it before it began")
    assert count_trials(cluster.engine, "orphan").finished == 3  # it used no budget
    retried = [
        t for t in cluster.study("orphan").trials if t.user_attrs.get("retry_of") == lost.number
    ]
    assert len(retried) == 1
