"""What a client can ask for: workloads, methods, workers, and the OpenAPI schema."""

from __future__ import annotations

import socket

import httpx
import pytest
import sqlalchemy as sa

from regcore.regularizers import L1_METHODS, METHODS
from regcore.store import create_engine_for, register_worker
from regcore.workloads import available_workloads

pytestmark = pytest.mark.anyio


async def test_workloads_list_every_registered_workload(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/workloads")).json()

    assert [w["name"] for w in body["data"]] == list(available_workloads())
    assert body["count"] == len(body["data"])
    digits = next(w for w in body["data"] if w["name"] == "digits_mlp")
    assert digits["task"] == "classification"
    assert "val_loss" in digits["metrics"]
    assert "val_accuracy" in digits["maximize"]
    assert "hidden" in digits["params_schema"]["properties"]


async def test_methods_say_which_can_apply_l1(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/methods")).json()

    assert [m["name"] for m in body["data"]] == list(METHODS)
    assert {m["name"] for m in body["data"] if m["supports_l1"]} == set(L1_METHODS)
    assert not next(m for m in body["data"] if m["name"] == "weight_decay")["supports_l1"]


async def test_workers_list_who_is_working(client: httpx.AsyncClient, database_url: str) -> None:
    engine: sa.Engine = create_engine_for(database_url)
    worker = register_worker(engine, host=socket.gethostname(), pid=123, device="cuda:1")
    engine.dispose()

    body = (await client.get("/v1/workers")).json()

    assert body["count"] == 1
    listed = body["data"][0]
    assert listed["id"] == worker.id
    assert listed["device"] == "cuda:1"
    assert listed["status"] == "idle"
    assert listed["current_trial_number"] is None
    assert listed["last_heartbeat"] is not None


async def test_openapi_documents_the_spec_and_the_error_shape(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    create = schema["paths"]["/v1/sweeps"]["post"]
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref == "#/components/schemas/SweepSpec"
    assert "search_space" in schema["components"]["schemas"]["SweepSpec"]["properties"]
    assert "SearchSpace" in schema["components"]["schemas"]
    error = create["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert error == "#/components/schemas/ErrorBody"
    summaries = [op["summary"] for path in schema["paths"].values() for op in path.values()]
    assert len(summaries) == 16
    batch = schema["paths"]["/v1/batches"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["schema"]["$ref"] == "#/components/schemas/BatchSpec"
    assert (
        "text/html"
        in schema["paths"]["/v1/sweeps/{sweep_id}/report"]["get"]["responses"]["200"]["content"]
    )


async def test_openapi_documents_400_on_every_route(client: httpx.AsyncClient) -> None:
    # The body limit answers 400 for a malformed Content-Length before any route runs.
    schema = (await client.get("/openapi.json")).json()

    operations = [(p, m, op) for p, item in schema["paths"].items() for m, op in item.items()]
    assert operations
    for path, method, operation in operations:
        error = operation["responses"].get("400", {}).get("content", {}).get("application/json")
        assert error == {"schema": {"$ref": "#/components/schemas/ErrorBody"}}, (method, path)
