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
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState

from regcore.spec import SweepSpec, parse_spec
from regcore.store import create_storage
from regcore.studies import open_study
from tests.waiting import free_port
from worker.runner import run_trial

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
