"""Probes and metrics: ``/healthz`` without a database, ``/readyz`` 503 while it cannot be
reached (and the API 503 in the error shape, never a 500), Prometheus text with every
metric the dashboards use."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from regcore.service import create_app
from regcore.store import heartbeat_worker, register_worker
from tests.postgres import admin_engine
from tests.service.conftest import MakeApp, client_for, make_spec

pytestmark = pytest.mark.anyio


def engine_of(app: FastAPI) -> sa.Engine:
    engine: sa.Engine = app.state.database.engine
    return engine


def unreachable_urls(tmp_path: Path) -> list[str]:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    return [
        f"sqlite:///{not_a_dir}/regsweep.db",  # its folder cannot exist
        "postgresql://postgres@127.0.0.1:1/regsweep",  # nothing listens on port 1
    ]


async def test_healthz_and_readyz_answer_on_a_live_database(make_app: MakeApp) -> None:
    async with client_for(make_app()) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")

    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


@pytest.mark.parametrize("which", [0, 1], ids=["sqlite", "postgresql"])
async def test_an_unreachable_database_is_503_never_500(tmp_path: Path, which: int) -> None:
    url = unreachable_urls(tmp_path)[which]
    app = create_app(database_url=url)
    async with client_for(app) as client:
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        listed = await client.get("/v1/sweeps")
        submitted = await client.post("/v1/sweeps", json=make_spec())
        metrics = await client.get("/metrics")

    assert health.status_code == 200  # the process is up all the same
    for response in (ready, listed, submitted):
        assert response.status_code == 503, response.text
        assert set(response.json()) == {"detail", "field", "problems"}
        assert "127.0.0.1:1" not in response.text
        assert "a-file" not in response.text
    assert metrics.status_code == 200
    assert "regsweep_database_up 0.0" in metrics.text


async def test_metrics_expose_queue_trials_and_latencies_with_workers_claims(
    make_app: MakeApp,
) -> None:
    app = make_app()
    async with client_for(app) as client:
        sweep_id = (await client.post("/v1/sweeps", json=make_spec("m"))).json()["id"]
        await client.get(f"/v1/sweeps/{sweep_id}")
        await client.get("/v1/sweeps/0123456789ab")
        worker = register_worker(engine_of(app), host="gpu-7", pid=1, device="cuda:0")
        heartbeat_worker(
            engine_of(app),
            worker.id,
            current_sweep_id=None,
            current_trial_number=None,
            claims=3,
            claim_seconds=0.012,
        )
        response = await client.get("/metrics")

    text = response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert 'regsweep_sweeps{status="queued"} 1.0' in text
    assert 'regsweep_sweeps{status="running"} 0.0' in text
    assert 'regsweep_trials{state="WAITING"} 1.0' in text  # the enqueued baseline
    assert "regsweep_queue_depth 1.0" in text
    assert "regsweep_database_up 1.0" in text
    claims = f'regsweep_claim_duration_seconds_count{{host="gpu-7",worker="{worker.id}"}} 3.0'
    assert claims in text
    assert f'regsweep_claim_duration_seconds_sum{{host="gpu-7",worker="{worker.id}"}} 0.012' in text
    latency = "regsweep_http_request_duration_seconds_count"
    # By route template, so ids do not multiply the series.
    assert f'{latency}{{method="GET",route="/v1/sweeps/{{sweep_id}}",status="200"}} 1.0' in text
    assert f'{latency}{{method="GET",route="/v1/sweeps/{{sweep_id}}",status="404"}} 1.0' in text
    assert f'{latency}{{method="POST",route="/v1/sweeps",status="201"}} 1.0' in text
    assert sweep_id not in text


async def test_two_apps_in_one_process_keep_their_own_metrics(make_app: MakeApp) -> None:
    first, second = make_app(), make_app()
    async with client_for(first) as client:
        await client.get("/healthz")
    async with client_for(second) as client:
        text = (await client.get("/metrics")).text

    assert 'route="/healthz"' not in text


async def test_readyz_is_503_while_the_database_refuses_writes(
    make_app: MakeApp, database_url: str
) -> None:
    """Reads still answer (the old probe said ready); a write would fail: a PostgreSQL
    database turned read-only (as a standby is), a SQLite file whose write lock is held."""
    url = sa.make_url(database_url)
    blocker: Any = None
    if url.get_backend_name() == "postgresql":
        admin = admin_engine()
        with admin.connect() as connection:
            connection.exec_driver_sql(
                f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = on'
            )
    else:
        blocker = sqlite3.connect(str(url.database), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another process mid-write, stuck
    try:
        async with client_for(make_app()) as client:
            refused = await client.get("/readyz")
            listed = await client.get("/v1/sweeps")
    finally:
        if blocker is not None:
            blocker.execute("ROLLBACK")
            blocker.close()
        else:
            with admin.connect() as connection:
                connection.exec_driver_sql(
                    f'ALTER DATABASE "{url.database}" SET default_transaction_read_only = off'
                )
            admin.dispose()
    async with client_for(make_app()) as client:
        ready = await client.get("/readyz")

    assert listed.status_code == 200, listed.text
    assert refused.status_code == 503, refused.text
    assert "refuses writes" in refused.json()["detail"]
    assert ready.status_code == 200, ready.text


async def test_readyz_writes_nothing(make_app: MakeApp) -> None:
    app = make_app()
    async with client_for(app) as client:
        await client.post("/v1/sweeps", json=make_spec("kept"))
        await client.get("/readyz")
        before = _footprint(app)
        answers = [(await client.get("/readyz")).status_code for _ in range(20)]

    assert answers == [200] * 20
    assert _footprint(app) == before


def _footprint(app: FastAPI) -> tuple[Any, ...]:
    """What a write would change: the queue's rows, and the SQLite file and its WAL (a
    transaction that wrote anything, even rolled back, leaves frames there), or the size of
    PostgreSQL's table."""
    engine = engine_of(app)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT id, priority, status FROM sweeps").all()
        if engine.dialect.name == "postgresql":
            size = connection.exec_driver_sql("SELECT pg_relation_size('sweeps')").scalar()
            return (rows, size)
    path = Path(str(engine.url.database))
    wal = path.with_name(path.name + "-wal")
    return (rows, path.stat().st_size, wal.stat().st_size if wal.exists() else 0)
