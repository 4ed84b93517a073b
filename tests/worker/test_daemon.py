"""``regsweep worker`` processes against a real database: queue order, exact budgets, faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from regcore.spec import parse_spec
from regcore.store import (
    count_trials,
    create_engine_for,
    create_storage,
    get_sweep,
    insert_sweep,
    list_workers,
    request_cancel,
    upgrade_database,
)
from regcore.sweeps.studies import open_study
from tests.waiting import wait_until

FAST = {
    "workload": {"name": "sparse_regression", "params": {"n_samples": 200, "n_features": 20}},
    "search_space": {
        "l1": {"low": 1e-3, "high": 1e-1, "log": True},
        "l2": 0.0,
        "method": "proximal",
    },
    "training": {"epochs": 3, "batch_size": 200, "device": "cpu"},
    "pruner": {"name": "none"},
    "sampler": {"name": "tpe", "seed": 0},  # sampled, not walked as a path
    "confirm": False,
}
SLOW = {
    **FAST,
    "workload": {"name": "digits_mlp", "params": {"hidden": [256, 256]}},
    "training": {"epochs": 30, "batch_size": 16, "device": "cpu"},
}


class Cluster:
    """A database and the worker processes working on it."""

    def __init__(self, url: str, folder: Path, *, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.folder = folder  # the workers' working directory: nothing lands in the repository
        self.extra_env = env or {}
        upgrade_database(url)
        self.engine = create_engine_for(url)
        self.storage = create_storage(url)
        self.workers: list[subprocess.Popen[bytes]] = []

    def submit(self, name: str, n_trials: int, *, priority: int = 0, base: Any = FAST) -> str:
        spec = parse_spec({**base, "name": name, "budget": {"n_trials": n_trials}})
        row = insert_sweep(self.engine, spec_json=spec.to_json_dict(), name=name, priority=priority)
        open_study(spec, self.storage, user_attrs={"sweep_id": row.id})
        return row.id

    def start_workers(self, n: int, *, stderr: IO[str] | None = None) -> None:
        env = {
            **os.environ,
            "REGSWEEP_DATABASE_URL": self.url,
            "REGSWEEP_HEARTBEAT_S": "1",
            "REGSWEEP_GRACE_S": "4",
            "REGSWEEP_ARTIFACT_DIR": str(self.folder / "artifacts"),
            "REGSWEEP_DATA_DIR": str(self.folder / "data"),
            "OMP_NUM_THREADS": "1",
            **self.extra_env,
        }
        command = [sys.executable, "-m", "regcore.cli", "worker", "--device", "cpu"]
        for _ in range(n):
            # Each in a process group of its own, as on a machine of its own (kill_machine).
            worker = subprocess.Popen(
                command, env=env, cwd=self.folder, start_new_session=True, stderr=stderr
            )
            self.workers.append(worker)

    def kill_machine(self, pid: int) -> None:
        """kill -9 a worker with every process it started, as when its machine disappears."""
        os.killpg(pid, signal.SIGKILL)

    def study(self, name: str) -> optuna.Study:
        return optuna.load_study(study_name=name, storage=self.storage)

    def status(self, sweep_id: str) -> str:
        return get_sweep(self.engine, sweep_id).status

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.engine.dispose()


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
