"""Training functions under real workers: cancel, deadline, a crashing function, one that
ignores a stop, and a worker killed mid-trial. The functions are tests/plugins/functions.py,
registered through REGSWEEP_PLUGINS."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from regcore.spec import parse_spec
from regcore.store import count_trials, insert_sweep, list_workers, request_cancel
from regcore.studies import open_study
from regcore.workloads import load_plugin_modules
from tests.waiting import wait_until
from tests.worker.test_daemon import Cluster

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = "tests.plugins.functions"
ENV = {"REGSWEEP_PLUGINS": PLUGINS, "PYTHONPATH": str(ROOT)}
load_plugin_modules([PLUGINS])  # this process reads the specs too


def spec_data(name: str, n_trials: int, **params: Any) -> dict[str, Any]:
    return {
        "name": name,
        "workload": {"name": "test_linear", "params": params},
        "search_space": {"l1": {"low": 1e-4, "high": 1e-2, "log": True}, "l2": 0.0},
        "optimizer": {"lr": 0.05},
        "training": {"epochs": params.pop("epochs", 4), "device": "cpu"},
        "pruner": {"name": "none"},
        "sampler": {"name": "tpe", "seed": 0},  # sampled, not walked as a path
        "confirm": False,
        "budget": {"n_trials": n_trials},
    }


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path, env=ENV)
    yield c
    c.stop()


def submit(cluster: Cluster, data: dict[str, Any], **budget: Any) -> str:
    spec = parse_spec({**data, "budget": {**data["budget"], **budget}})
    row = insert_sweep(
        cluster.engine,
        spec_json=spec.to_json_dict(),
        name=spec.name,
        deadline=spec.budget.deadline,
    )
    open_study(spec, cluster.storage, user_attrs={"sweep_id": row.id})
    return row.id


def running(cluster: Cluster, name: str) -> optuna.trial.FrozenTrial | None:
    trials = cluster.study(name).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return trials[0] if trials and trials[0].user_attrs.get("epochs_run") else None


def test_cancel_stops_a_training_function_at_its_next_report(cluster: Cluster) -> None:
    sweep = submit(cluster, spec_data("fn-cancel", 5, seconds_per_epoch=0.3, epochs=200))
    cluster.start_workers(1)
    wait_until(lambda: running(cluster, "fn-cancel") is not None, 90, "a reporting trial")
    request_cancel(cluster.engine, sweep)
    wait_until(lambda: running(cluster, "fn-cancel") is None, 15, "the trial to stop")
    (trial,) = cluster.study("fn-cancel").trials
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == (
        "interrupted: stopped: its sweep ended or its worker is stopping"
    )
    assert trial.user_attrs["interrupted"] is True
    assert len(trial.user_attrs["curves"]["val_loss"]) == trial.user_attrs["epochs_run"]


def test_a_deadline_stops_a_training_function_after_the_grace(cluster: Cluster) -> None:
    deadline = datetime.now(UTC) + timedelta(seconds=8)
    data = spec_data("fn-deadline", 5, seconds_per_epoch=0.3, epochs=200)
    sweep = submit(cluster, data, deadline=deadline.isoformat())
    cluster.start_workers(1)
    wait_until(lambda: cluster.status(sweep) == "deadline_reached", 60, "the deadline")
    wait_until(lambda: running(cluster, "fn-deadline") is None, 20, "grace (4 s) + a report")
    trial = cluster.study("fn-deadline").trials[0]
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"].startswith("interrupted: stopped")
    assert trial.datetime_complete is not None


def test_a_function_that_kills_its_process_fails_that_trial_only(cluster: Cluster) -> None:
    sweep = submit(cluster, spec_data("fn-exit", 4, exit_on_trial=1))
    cluster.start_workers(1)
    wait_until(lambda: cluster.status(sweep) == "completed", 120, "the sweep")
    trials = cluster.study("fn-exit").trials
    assert trials[1].state == TrialState.FAIL
    assert trials[1].user_attrs["fail_reason"] == (
        "died: the training function's process exited with code 3"
    )
    assert trials[1].user_attrs["final_failure"] is True  # its point is bad: it used budget
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 3
    assert count_trials(cluster.engine, "fn-exit").finished == 4
    assert all(w.pid for w in list_workers(cluster.engine))  # the worker lived on


def test_a_function_that_ignores_a_stop_is_terminated_after_the_grace(cluster: Cluster) -> None:
    sweep = submit(cluster, spec_data("fn-hang", 3, ignore_stop=True))
    cluster.start_workers(1)
    wait_until(
        lambda: bool(cluster.study("fn-hang").get_trials(states=(TrialState.RUNNING,))),
        90,
        "a running trial",
    )
    request_cancel(cluster.engine, sweep)
    wait_until(
        lambda: not cluster.study("fn-hang").get_trials(states=(TrialState.RUNNING,)),
        20,
        "the hanging function to be terminated (grace 4 s)",
    )
    trial = cluster.study("fn-hang").trials[0]
    assert trial.user_attrs["fail_reason"] == (
        "interrupted: stopped: it did not stop within 4 s and was terminated"
    )
    (process,) = cluster.workers
    assert process.poll() is None  # the worker is fine


def test_a_vanished_workers_function_trial_is_retried(cluster: Cluster) -> None:
    sweep = submit(cluster, spec_data("fn-kill", 3, seconds_per_epoch=0.2, epochs=15))
    cluster.start_workers(2)
    wait_until(lambda: running(cluster, "fn-kill") is not None, 90, "a reporting trial")
    busy = next(w for w in list_workers(cluster.engine) if w.current_trial_number is not None)
    cluster.kill_machine(busy.pid)  # the worker and the child running the function
    killed = busy.current_trial_number
    assert killed is not None
    wait_until(lambda: cluster.status(sweep) == "completed", 120, "the sweep")
    trials = cluster.study("fn-kill").trials
    assert trials[killed].state == TrialState.FAIL
    assert trials[killed].user_attrs["fail_reason"] == (
        "interrupted: its worker stopped beating for over 4 s (killed, or its machine lost)"
    )
    assert trials[killed].user_attrs["final_failure"] is False  # it used no budget
    retried = [t for t in trials if t.user_attrs.get("retry_of") == killed]
    assert [t.state for t in retried] == [TrialState.COMPLETE]
    assert retried[0].params == trials[killed].params
    assert retried[0].user_attrs["workers_lost"] == 1
    assert count_trials(cluster.engine, "fn-kill").finished == 3


def test_regsweep_run_runs_a_training_function_and_records_its_code(tmp_path: Path) -> None:
    spec_file = tmp_path / "fn.yaml"
    data = spec_data("fn-run", 4, width=2)
    data["search_space"]["params"] = {"width": {"choices": [2, 5]}}
    spec_file.write_text(yaml.safe_dump(data))
    url = f"sqlite:///{tmp_path / 'run.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "regcore.cli", "run", str(spec_file), "--storage", url],
        env={**os.environ, **ENV, "OMP_NUM_THREADS": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    study = optuna.load_study(study_name="fn-run", storage=url)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4
    for trial in complete:
        assert trial.user_attrs["width_seen"] == trial.params["width"]  # params reached it
        assert trial.user_attrs["code"].startswith("tests.plugins.functions sha256:")
        assert len(trial.user_attrs["curves"]["train_loss"]) == 4
        assert "sparsity" in trial.user_attrs
