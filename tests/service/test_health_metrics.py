"""Probes and metrics: ``/healthz`` without a database, ``/readyz`` 503 while it cannot be
reached (and the API 503 in the error shape, never a 500), Prometheus text with every
metric the dashboards use."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from regcore.store import heartbeat_worker, register_worker
from service import create_app
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
