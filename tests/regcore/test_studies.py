"""The Optuna study behind a sweep, as optuna-dashboard's own server sees it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from regcore.spec import SweepSpec, parse_spec
from regcore.store import create_storage
from regcore.studies import open_study
from tests.waiting import free_port

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_spec() -> SweepSpec:
    return parse_spec(
        {
            "name": "dashboard-test",
            "workload": {"name": "sparse_regression"},
            "search_space": {"l1": {"low": 1e-4, "high": 1e-1, "log": True}, "l2": 0.0},
        }
    )


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """optuna-dashboard's own server on a fresh SQLite database: (database URL, base URL)."""
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    create_storage(url)  # the dashboard opens with skip_table_creation: tables must exist
    port = free_port()
    executable = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent))
    assert executable, "optuna-dashboard is a dependency of regsweep; reinstall the package"
    process = subprocess.Popen(
        [executable, url, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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
