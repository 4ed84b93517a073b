"""The whole product with real processes: ``regsweep serve``, three ``regsweep worker``s,
a SQLite database, and a client speaking REST."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.product import Product
from tests.waiting import wait_until


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
    # The template names no sampler and searches λ₁ and λ₂ alone: path mode (the default
    # there), which trains its λ = 0 start itself, so nothing waits before a worker walks it.
    assert exported == []
