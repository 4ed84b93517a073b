"""The Optuna study behind a sweep, as optuna-dashboard's own server sees it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
import torch
from optuna.trial import TrialState

from regcore.spec import SweepSpec, parse_spec
from regcore.store import (
    SweepNameTakenError,
    create_engine_for,
    create_storage,
    get_sweep,
    upgrade_database,
)
from regcore.sweeps.half_made import CREATED_AT, remove_half_made, study_takes_name
from regcore.sweeps.studies import create_sweep, open_study, resume_sweep
from regcore.worker.runner import run_trial
from tests.waiting import free_port

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_spec() -> SweepSpec:
    return parse_spec(
        {
            "name": "dashboard-test",
            "workload": {"name": "sparse_regression"},
            "search_space": {"l1": {"low": 1e-4, "high": 1e-1, "log": True}, "l2": 0.0},
            "sampler": {"name": "tpe"},  # sampled: the baseline is queued, not walked
        }
    )


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``regsweep dashboard`` (optuna-dashboard's own server) on a fresh SQLite database and
    artifact directory: (database URL, base URL)."""
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    port = free_port()
    env = {
        **os.environ,
        "REGSWEEP_DATABASE_URL": url,
        "REGSWEEP_ARTIFACT_DIR": str(tmp_path / "artifacts"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "regcore.cli", "dashboard", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                get_json(f"{base}/api/studies")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url, base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_dashboard_lists_the_study_with_the_sweep_id_and_spec(
    dashboard: tuple[str, str],
) -> None:
    url, base = dashboard
    spec = make_spec()
    study = open_study(spec, create_storage(url), user_attrs={"sweep_id": "abc123"})
    trial = study.ask()
    trial.set_user_attr("sparsity", 0.5)
    study.tell(trial, 0.25)

    summaries = get_json(f"{base}/api/studies")["study_summaries"]
    (summary,) = [s for s in summaries if s["study_name"] == spec.name]
    attrs = {a["key"]: a["value"] for a in summary["user_attrs"]}
    assert attrs["sweep_id"] == "abc123"
    assert attrs["workload"] == "sparse_regression"
    assert json.loads(attrs["spec"])["name"] == spec.name

    detail = get_json(f"{base}/api/studies/{summary['study_id']}")
    finished = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert [t["values"] for t in finished] == [[0.25]]
    assert {"key": "sparsity", "value": "0.5"} in finished[0]["user_attrs"]


def test_open_study_queues_the_baseline_and_resumes(tmp_path: Path) -> None:
    storage = create_storage(f"sqlite:///{tmp_path / 's.db'}")
    first = open_study(make_spec(), storage)
    again = open_study(make_spec(), storage)
    assert first._study_id == again._study_id
    (baseline,) = again.trials
    assert baseline.state == optuna.trial.TrialState.WAITING
    assert baseline.user_attrs == {"baseline": True}


def test_the_dashboard_serves_the_best_trials_weights(
    dashboard: tuple[str, str], tmp_path: Path
) -> None:
    url, base = dashboard
    spec = make_spec()
    study = open_study(spec, create_storage(url), user_attrs={"sweep_id": "abc123"})
    state = run_trial(study, study.ask(), spec, artifact_dir=tmp_path / "artifacts")
    assert state == TrialState.COMPLETE

    summaries = get_json(f"{base}/api/studies")["study_summaries"]
    (summary,) = [s for s in summaries if s["study_name"] == spec.name]
    detail = get_json(f"{base}/api/studies/{summary['study_id']}")
    (trial,) = [t for t in detail["trials"] if t["state"] == "Complete"]
    (artifact,) = trial["artifacts"]
    path = f"/artifacts/{summary['study_id']}/{trial['trial_id']}/{artifact['artifact_id']}"
    with urllib.request.urlopen(base + path, timeout=10) as response:
        weights = torch.load(io.BytesIO(response.read()), weights_only=True)
    assert weights  # a state dict: parameter name → tensor
    assert all(isinstance(v, torch.Tensor) for v in weights.values())


# ---- a sweep is claimable only once its study is whole ----------------------------------------


def store(tmp_path: Path) -> tuple[sa.Engine, optuna.storages.RDBStorage]:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    upgrade_database(url)
    return create_engine_for(url), create_storage(url)


def half_made(storage: optuna.storages.RDBStorage, spec: SweepSpec, *, age_s: float) -> None:
    """What a submission killed after making its study, before its row, leaves."""
    study = optuna.create_study(study_name=spec.name, storage=storage)
    made = datetime.now(UTC) - timedelta(seconds=age_s)
    study.set_user_attr(CREATED_AT, made.isoformat())
    study.set_user_attr("sweep_id", "deadbeef0000")


def test_create_sweep_makes_the_study_whole_with_the_sweeps_id(tmp_path: Path) -> None:
    engine, storage = store(tmp_path)
    row = create_sweep(engine, storage, make_spec(), owner="alice")
    study = optuna.load_study(study_name=row.study_name, storage=storage)
    assert study.user_attrs["sweep_id"] == row.id
    assert study.user_attrs["workload"] == "sparse_regression"
    (baseline,) = study.trials
    assert baseline.user_attrs == {"baseline": True}
    assert get_sweep(engine, row.id).status == "queued"
    with pytest.raises(SweepNameTakenError):
        create_sweep(engine, storage, make_spec())


def test_a_study_a_killed_submission_left_is_made_again_by_the_next(tmp_path: Path) -> None:
    engine, storage = store(tmp_path)
    half_made(storage, make_spec(), age_s=0)
    assert not study_takes_name(storage, "dashboard-test")
    row = create_sweep(engine, storage, make_spec())
    study = optuna.load_study(study_name="dashboard-test", storage=storage)
    assert study.user_attrs["sweep_id"] == row.id
    assert [t.user_attrs for t in study.trials] == [{"baseline": True}]


def test_a_study_made_without_a_sweep_keeps_its_name(tmp_path: Path) -> None:
    engine, storage = store(tmp_path)
    optuna.create_study(study_name="by-hand", storage=storage)
    # An earlier version's `regsweep run` made this one, with its spec and without a sweep.
    old = optuna.create_study(study_name="dashboard-test", storage=storage)
    old.set_user_attr("spec", make_spec().to_compact_dict())
    for name in ("by-hand", "dashboard-test"):
        assert study_takes_name(storage, name)
        with pytest.raises(SweepNameTakenError, match="made without a sweep"):
            create_sweep(engine, storage, named(name))
    assert optuna.load_study(study_name="dashboard-test", storage=storage).user_attrs == {
        "spec": make_spec().to_compact_dict()
    }


def named(name: str) -> SweepSpec:
    return parse_spec({**make_spec().to_json_dict(), "name": name})


def test_recovery_removes_what_killed_submissions_left_once_old_and_nothing_else(
    tmp_path: Path,
) -> None:
    engine, storage = store(tmp_path)
    spec = make_spec()
    half_made(storage, spec, age_s=120)
    half_made(storage, named("young"), age_s=0)
    whole = create_sweep(engine, storage, named("whole"))
    old_run = named("old-run")
    optuna.create_study(study_name="old-run", storage=storage).set_user_attr(
        "spec", old_run.to_compact_dict()
    )
    assert remove_half_made(engine, storage, older_than_s=60) == ["dashboard-test"]
    names = set(optuna.get_all_study_names(storage))
    assert names == {"young", "whole", "old-run"}
    assert get_sweep(engine, whole.id).status == "queued"
    # resume_sweep adopts the study an earlier version's run made, from the same spec.
    adopted = resume_sweep(engine, storage, old_run)
    study = optuna.load_study(study_name="old-run", storage=storage)
    assert study.user_attrs["sweep_id"] == adopted.id
