"""Training functions under real workers: cancel, deadline, a crashing function, one that
ignores a stop, and a worker killed mid-trial. The functions are tests/plugins/functions.py,
registered through REGSWEEP_PLUGINS."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from regcore.spec import parse_spec
from regcore.store import (
    count_trials,
    create_storage,
    get_sweep,
    insert_sweep,
    list_workers,
    request_cancel,
)
from regcore.sweeps.studies import open_study
from regcore.worker.functions import FunctionRunner
from regcore.worker.runner import run_trial
from regcore.workloads import load_plugin_modules
from tests.waiting import wait_until
from tests.worker.cluster import Cluster

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


def test_a_nan_reported_by_a_training_function_fails_its_trial_as_diverged(
    tmp_path: Path,
) -> None:
    spec = parse_spec(spec_data("fn-nan", 1, nan_in_epoch=2))
    storage = create_storage(f"sqlite:///{tmp_path / 'nan.db'}")
    study = optuna.create_study(storage=storage, directions=spec.directions)
    runner = FunctionRunner(threads=1)
    try:
        # It reports NaN in epoch 2 of 4, and returns a finite val_loss all the same.
        assert run_trial(study, study.ask(), spec, functions=runner) == TrialState.FAIL
        trial = study.trials[0]
        assert trial.user_attrs["fail_reason"].startswith(
            "diverged: val_loss became nan in epoch 2;"
        )
        assert trial.user_attrs["final_failure"] is True
        assert trial.user_attrs["curves"]["val_loss"][1] is None
        assert trial.user_attrs["epochs_run"] == 2  # stopped there, not run to its end
        fine = parse_spec(spec_data("fn-nan", 1))
        assert run_trial(study, study.ask(), fine, functions=runner) == TrialState.COMPLETE
    finally:
        runner.close(kill=True)
        storage.engine.dispose()


VERSIONED = """\
import os
import time

from regcore.workloads import TrialContext, training_function

VERSION = {version}


@training_function(name="versioned", metrics=("val_loss", "version"))
def train(ctx: TrialContext) -> dict[str, float]:
    if VERSION == 1 and ctx.number == 2:
        os._exit(3)  # its process dies: the next trial's process imports the file anew
    for epoch in range(ctx.epochs):
        time.sleep(0.5)  # the file is edited while the next trials run
        ctx.report(epoch, {{"val_loss": 1.0 / (epoch + 1)}})
    return {{"val_loss": 0.5, "version": float(VERSION)}}
"""


def test_a_trial_records_the_code_its_process_imported_not_the_file_edited_since(
    tmp_path: Path,
) -> None:
    source = tmp_path / "versioned_plugin.py"
    codes = {}
    for version in (1, 2):
        text = VERSIONED.format(version=version)
        codes[version] = "versioned_plugin sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]
    source.write_text(VERSIONED.format(version=1))
    env = {"REGSWEEP_PLUGINS": "versioned_plugin", "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    cluster = Cluster(f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path, env=env)
    try:
        data = spec_data("fn-code", 5, epochs=3)
        data["workload"] = {"name": "versioned"}
        row = insert_sweep(cluster.engine, spec_json=data, name="fn-code")
        cluster.start_workers(1)

        def first_done() -> bool:
            try:
                return cluster.study("fn-code").trials[0].state == TrialState.COMPLETE
            except (KeyError, IndexError):
                return False

        wait_until(first_done, 90, "the first trial")
        source.write_text(VERSIONED.format(version=2))  # edited while the worker runs
        wait_until(lambda: cluster.status(row.id) == "completed", 120, "the sweep")
        trials = cluster.study("fn-code").trials
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        ran = {int(t.user_attrs["version"]) for t in complete}
        assert ran == {1, 2}  # the old code ran after the edit, then the new
        for trial in complete:
            assert trial.user_attrs["code"] == codes[int(trial.user_attrs["version"])], trial
        (died,) = [t for t in trials if t.state == TrialState.FAIL]
        assert died.user_attrs["code"] == codes[1]  # the worker's own import: version 1
    finally:
        cluster.stop()


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


def test_a_worker_without_the_plugin_leaves_the_sweep_to_one_with_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'regsweep.db'}"
    log = tmp_path / "without.log"
    without = Cluster(url, tmp_path, env={"PYTHONPATH": str(ROOT)})  # no REGSWEEP_PLUGINS
    with_plugin = Cluster(url, tmp_path, env=ENV)
    try:
        sweep = submit(with_plugin, spec_data("fn-elsewhere", 3))
        with log.open("w") as output:
            without.start_workers(1, stderr=output)

        wait_until(lambda: bool(list_workers(without.engine)), 90, "the worker to start")
        time.sleep(3)  # its rounds go by (it polls every second): it leaves the sweep alone
        row = get_sweep(without.engine, sweep)
        assert row.status == "queued", row.error  # left for a worker that can run it
        (lacking,) = list_workers(without.engine)
        assert "unknown workload 'test_linear'" in lacking.cannot_run["test_linear"]
        assert row.note is not None
        assert row.note.startswith(
            f"waiting for a worker that can run workload 'test_linear': worker {lacking.id} on "
        )
        shown = subprocess.run(
            [sys.executable, "-m", "regcore.cli", "status", sweep, "--storage", url],
            env={**os.environ, **ENV, "COLUMNS": "1000"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert f"worker {lacking.id} on" in shown.stdout, shown.stdout + shown.stderr
        with_plugin.start_workers(1)
        wait_until(lambda: with_plugin.status(sweep) == "completed", 120, "the sweep")
        assert get_sweep(without.engine, sweep).note is None  # cleared by the claim
        complete = with_plugin.study("fn-elsewhere").get_trials(states=(TrialState.COMPLETE,))
        assert len(complete) == 3
    finally:
        without.stop()
        with_plugin.stop()
    assert log.read_text().count("needs workload 'test_linear'") == 1
