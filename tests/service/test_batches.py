"""``/v1/batches`` on SQLite and PostgreSQL: submit a matrix as one batch, read it back,
refuse bad batches with every problem listed, and render its report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import optuna
import pytest

from regcore.store import create_engine_for, create_storage, register_worker
from tests.service.conftest import make_spec

pytestmark = pytest.mark.anyio


def make_batch(name: str = "nightly", **overrides: Any) -> dict[str, Any]:
    batch: dict[str, Any] = {
        "name": name,
        "deadline": (datetime.now(UTC) + timedelta(hours=8)).isoformat(),
        "template": make_spec("diab"),
        "matrix": {"training.seed": [0, 1], "search_space.method": ["fused", "proximal"]},
    }
    return {**batch, **overrides}


async def test_a_matrix_queues_one_sweep_per_combination(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/batches", json=make_batch())

    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == "/v1/batches/nightly"
    names = [s["name"] for s in body["sweeps"]]
    assert names == [
        "nightly-diab-0-fused",
        "nightly-diab-0-proximal",
        "nightly-diab-1-fused",
        "nightly-diab-1-proximal",
    ]
    assert body["status"]["queued"] == 4
    deadline = datetime.fromisoformat(body["deadline"])
    assert all(datetime.fromisoformat(s["deadline"]) == deadline for s in body["sweeps"])
    listed = (await client.get("/v1/sweeps")).json()
    assert listed["count"] == 4


async def test_submit_estimates_against_the_deadline(
    client: httpx.AsyncClient, database_url: str
) -> None:
    first = await client.post("/v1/batches", json=make_batch("earlier"))
    study_name = first.json()["sweeps"][0]["study_name"]
    storage = create_storage(database_url)
    study = optuna.load_study(study_name=study_name, storage=storage)
    for _ in range(3):  # past trials of diabetes_linear took 30 s each
        trial = study.ask()
        trial.set_user_attr("wall_s", 30.0)
        study.tell(trial, 1.0)
    storage.engine.dispose()
    engine = create_engine_for(database_url)
    register_worker(engine, host="a", pid=1, device="cpu")
    engine.dispose()

    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    response = await client.post("/v1/batches", json=make_batch("tight", deadline=soon))

    estimate = response.json()["estimate"]
    assert estimate["workers"] == 1
    assert estimate["trials"] == 16
    assert estimate["trial_seconds"] == {"diabetes_linear": 30.0}
    assert estimate["needed_s"] == pytest.approx(16 * 30.0)
    assert estimate["fits"] is False
    assert "it will not fit" in estimate["warnings"][0]


async def test_without_workers_or_history_the_estimate_says_so(
    client: httpx.AsyncClient,
) -> None:
    estimate = (await client.post("/v1/batches", json=make_batch())).json()["estimate"]

    assert estimate["workers"] == 0
    assert estimate["fits"] is None
    assert any("no worker is registered" in w for w in estimate["warnings"])
    assert any("no past trials of diabetes_linear" in w for w in estimate["warnings"])


async def test_read_batch_shows_each_sweeps_progress_and_best(
    client: httpx.AsyncClient, database_url: str
) -> None:
    body = (await client.post("/v1/batches", json=make_batch())).json()
    storage = create_storage(database_url)
    study = optuna.load_study(study_name=body["sweeps"][1]["study_name"], storage=storage)
    trial = study.ask()
    trial.set_user_attr("method", "proximal")
    trial.set_user_attr("l1", 0.0)
    trial.set_user_attr("l2", 1e-4)
    study.tell(trial, 0.25)
    storage.engine.dispose()

    batch = (await client.get("/v1/batches/nightly")).json()

    second = batch["sweeps"][1]
    assert second["progress"]["finished"] == 1
    assert (second["best_value"], second["best_method"], second["best_l2"]) == (
        0.25,
        "proximal",
        1e-4,
    )
    assert batch["sweeps"][0]["best_value"] is None
    assert second["workload"] == "diabetes_linear"


async def test_batch_report_is_one_html_file(client: httpx.AsyncClient) -> None:
    await client.post("/v1/batches", json=make_batch())

    response = await client.get("/v1/batches/nightly/report")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "nightly-diab-1-proximal" in response.text
    assert response.text.count("plotly.js v") >= 1


BAD_BATCHES = {
    "no sweeps nor template": ({"name": "b"}, ""),
    "bad deadline": (make_batch(deadline="soon"), "deadline"),
    "bad clock": (make_batch(deadline="25:00"), "deadline"),
    "empty matrix entry": (make_batch(matrix={"training.seed": []}), ""),
    "a sweep the spec refuses": (
        make_batch(matrix={"training.epochs": [0, 2]}),
        "template.training.epochs",
    ),
    "bad name": (make_batch(name="no spaces please"), "name"),
}


@pytest.mark.parametrize(("batch", "field"), BAD_BATCHES.values(), ids=BAD_BATCHES.keys())
async def test_bad_batches_are_422_with_the_field(
    client: httpx.AsyncClient, batch: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/batches", json=batch)

    assert response.status_code == 422, response.text
    fields = [p["field"] or "" for p in response.json()["problems"]]
    assert field in fields
    assert (await client.get("/v1/sweeps")).json()["count"] == 0  # nothing was queued


async def test_a_taken_name_queues_nothing(client: httpx.AsyncClient) -> None:
    await client.post("/v1/sweeps", json=make_spec("nightly-diab-1-fused"))

    response = await client.post("/v1/batches", json=make_batch())

    assert response.status_code == 409
    assert "nightly-diab-1-fused" in response.json()["detail"]
    assert (await client.get("/v1/sweeps")).json()["count"] == 1
    assert (await client.get("/v1/batches/nightly")).status_code == 404


async def test_an_unknown_batch_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/batches/nope")

    assert response.status_code == 404
    assert response.json()["field"] == "name"
