"""The whole product with real processes: ``regsweep serve``, three ``regsweep worker``s,
a SQLite database, and a client speaking REST."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.postgres import admin_engine, url_of
from tests.waiting import free_port, wait_until

SPEC: dict[str, Any] = {
    "workload": {"name": "sparse_regression", "params": {"n_samples": 200, "n_features": 20}},
    "search_space": {
        "l1": {"low": 1e-3, "high": 1e-1, "log": True},
        "l2": 0.0,
        "method": ["proximal", "fused"],
    },
    "training": {"epochs": 3, "batch_size": 200, "device": "cpu"},
    "pruner": {"name": "none"},
}


class Product:
    """The service and workers as processes; ``folder`` is their working directory."""

    def __init__(self, database_url: str, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.env = {
            **os.environ,
            "REGSWEEP_DATABASE_URL": database_url,
            "REGSWEEP_ARTIFACT_DIR": str(folder / "artifacts"),
            "REGSWEEP_DATA_DIR": str(folder / "data"),
            "REGSWEEP_SERVICE_URL": f"http://127.0.0.1:{self.port}",
            "REGSWEEP_TOKEN": "s3cret",
            "REGSWEEP_API_TOKENS": "alice:s3cret",
            "REGSWEEP_HEARTBEAT_S": "1",
            "REGSWEEP_GRACE_S": "4",
            "OMP_NUM_THREADS": "1",
        }
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": "Bearer s3cret"},
            timeout=10,
        )
        self.service: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _regsweep(self, *args: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "regcore.cli", *args]
        return subprocess.Popen(command, env=self.env, cwd=self.folder)

    def start_service(self, *options: str) -> None:
        self.service = self._regsweep("serve", "--port", str(self.port), *options)

        def ready() -> bool:
            try:
                return self.client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 60, "the service to answer /readyz")

    def stop_service(self) -> None:
        assert self.service is not None
        self.service.send_signal(signal.SIGTERM)
        # uvicorn shuts down cleanly, then re-raises the signal it caught
        assert self.service.wait(timeout=30) in (0, -signal.SIGTERM)

    def start_workers(self, n: int) -> None:
        self.workers += [self._regsweep("worker", "--device", "cpu") for _ in range(n)]

    def submit(self, name: str, n_trials: int, priority: int) -> str:
        body = {**SPEC, "name": name, "priority": priority, "budget": {"n_trials": n_trials}}
        response = self.client.post("/v1/sweeps", json=body)
        assert response.status_code == 201, response.text
        assert response.headers["location"].endswith(response.json()["id"])
        sweep_id: str = response.json()["id"]
        return sweep_id

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.client.get(f"/v1/sweeps/{sweep_id}").json()
        return body

    def close(self) -> None:
        for process in [*self.workers, *([self.service] if self.service else [])]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, *([self.service] if self.service else [])]:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.client.close()


@pytest.fixture(scope="module")
def postgres_databases() -> Iterator[Callable[[], str]]:
    """Scratch PostgreSQL databases, dropped after the module."""
    admin = admin_engine()
    made: list[str] = []

    def make() -> str:
        made.append(f"regsweep_e2e_{uuid.uuid4().hex[:10]}")
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{made[-1]}"'))
        return url_of(made[-1])

    yield make
    with admin.connect() as connection:
        for name in made:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def product(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Product]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'regsweep.db'}"
    else:
        url = request.getfixturevalue("postgres_databases")()
    p = Product(url, tmp_path)
    yield p
    p.close()


def test_service_and_three_workers_run_sweeps_by_priority_with_exact_budgets(
    product: Product,
) -> None:
    product.start_service()
    # low has twice the trials, so one slow trial of high cannot let low finish first
    low = product.submit("e2e-low", 12, priority=0)
    high = product.submit("e2e-high", 6, priority=10)
    product.start_workers(3)
    wait_until(
        lambda: product.sweep(low)["status"] == product.sweep(high)["status"] == "completed",
        240,
        "both sweeps to complete",
    )
    assert product.sweep(high)["finished_at"] <= product.sweep(low)["finished_at"]
    for sweep_id, n_trials in ((low, 12), (high, 6)):
        body = product.sweep(sweep_id)
        assert body["trials"]["COMPLETE"] == n_trials
        assert body["trials"]["RUNNING"] == body["trials"]["WAITING"] == 0
        assert body["owner"] == "alice"
        assert body["best"] is not None
    workers = product.client.get("/v1/workers").json()
    assert workers["count"] == 3


def test_restarting_the_service_mid_sweep_loses_nothing(product: Product) -> None:
    product.start_service()
    sweep_id = product.submit("e2e-restart", 10, priority=0)
    product.start_workers(2)
    wait_until(lambda: product.sweep(sweep_id)["trials"]["COMPLETE"] >= 2, 120, "two trials")
    product.stop_service()  # the workers go on: they talk only to the database
    product.start_service()
    wait_until(lambda: product.sweep(sweep_id)["status"] == "completed", 240, "the sweep")
    assert product.sweep(sweep_id)["trials"]["COMPLETE"] == 10


def test_the_cli_submits_shows_and_cancels_through_the_service(product: Product) -> None:
    product.start_service()
    spec = Path(__file__).resolve().parents[1] / "examples" / "sparse_regression.yaml"

    def regsweep(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "regcore.cli", *args],
            env=product.env,
            cwd=product.folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    submitted = regsweep("submit", str(spec))
    sweep_id = submitted.split("id ")[1].split()[0]
    assert "sparse-support" in regsweep("status", sweep_id)
    assert "queued" in regsweep("status")
    assert "cancelled" in regsweep("cancel", sweep_id)
    assert product.sweep(sweep_id)["status"] == "cancelled"


def test_serve_with_worker_is_a_whole_service_in_one_command(tmp_path: Path) -> None:
    product = Product(f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path)
    try:
        product.start_service("--with-worker")
        sweep_id = product.submit("e2e-one-command", 4, priority=0)
        wait_until(lambda: product.sweep(sweep_id)["status"] == "completed", 180, "the sweep")
        assert product.sweep(sweep_id)["trials"]["COMPLETE"] == 4

        def workers() -> list[dict[str, Any]]:
            data: list[dict[str, Any]] = product.client.get("/v1/workers").json()["data"]
            return data

        # One embedded worker, whose heartbeat reports the 4 trials it claimed.
        wait_until(lambda: [w["claims"] for w in workers()] == [4], 30, "the claim count")
        assert workers()[0]["claim_seconds"] > 0
        product.stop_service()  # stops the embedded worker too, which deregisters

        engine = sa.create_engine(product.env["REGSWEEP_DATABASE_URL"])
        with engine.connect() as connection:
            left = connection.execute(sa.text("SELECT count(*) FROM workers")).scalar_one()
        engine.dispose()
        assert left == 0
    finally:
        product.close()


def test_the_cli_submits_a_batch_and_saves_reports_and_exports(tmp_path: Path) -> None:
    product = Product(f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path)
    examples = Path(__file__).resolve().parents[1] / "examples"

    def regsweep(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "regcore.cli", *args],
            env={**product.env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    try:
        product.start_service()
        submitted = regsweep("batch", "submit", str(examples / "batches" / "nightly.yaml"))
        status = regsweep("batch", "status", "nightly")
        regsweep("report", "--batch", "nightly")
        sweep = product.client.get("/v1/batches/nightly").json()["sweeps"][0]
        regsweep("report", sweep["id"], "-o", "one.html")
        exported = json.loads(regsweep("export", sweep["id"], "--format", "json"))
    finally:
        product.close()

    assert "submitted batch nightly: 12 sweeps" in submitted
    assert "no worker is registered" in submitted
    assert status.count("queued") == 12
    assert "nightly-l1-vs-l2-digits_cnn-proximal.loss-1" in status
    assert "plotly" in (tmp_path / "nightly.html").read_text()
    assert sweep["name"] in (tmp_path / "one.html").read_text()
    assert [(t["state"], t["attrs_baseline"]) for t in exported] == [("WAITING", True)]
