"""Bad input gets the documented 4xx in the one error shape, never a 5xx: invalid specs,
malformed and oversized bodies, bad queries, unknown paths and methods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.service.conftest import MakeApp, client_for, make_spec

pytestmark = pytest.mark.anyio

OBJECTIVES_2 = [
    {"metric": "val_loss", "direction": "minimize"},
    {"metric": "sparsity", "direction": "maximize"},
]
# (spec, the field of its problem): each as `regsweep validate` would report it.
INVALID_SPECS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown workload": (make_spec(workload={"name": "nope"}), "workload.name"),
    "code path as workload": (make_spec(workload={"name": "os:system"}), "workload.name"),
    "unknown workload param": (
        make_spec(workload={"name": "diabetes_linear", "params": {"bogus": 1}}),
        "workload.params.bogus",
    ),
    "zero epochs": (make_spec(training={"epochs": 0}), "training.epochs"),
    "λ₁ only weight_decay cannot use": (
        make_spec(
            search_space={"l1": {"low": 1e-5, "high": 1e-3}, "l2": 0, "method": "weight_decay"}
        ),
        "search_space.l1",
    ),
    "reversed range": (
        make_spec(search_space={"l1": 0, "l2": {"low": 1e-2, "high": 1e-6}}),
        "search_space.l2",
    ),
    "unknown method": (
        make_spec(search_space={"l1": 0, "l2": 0, "method": "lasso"}),
        "search_space.method",
    ),
    "name with a space": (make_spec(name="has space"), "name"),
    "misplaced key": ({**make_spec(), "epochs": 3}, "epochs"),
    "three objectives": (make_spec(objectives=[OBJECTIVES_2[0]] * 3), "objectives"),
    "pruner with two objectives": (
        make_spec(objectives=OBJECTIVES_2, pruner={"name": "median"}),
        "pruner.name",
    ),
    "no budget": (make_spec(budget={"n_trials": 0}), "budget.n_trials"),
    "deadline without offset": (
        make_spec(budget={"deadline": "2030-01-01T00:00:00"}),
        "budget.deadline",
    ),
    "metric the workload lacks": (
        make_spec(objectives=[{"metric": "val_accuracy", "direction": "maximize"}]),
        "objectives.0.metric",
    ),
    "misspelled sampler": (make_spec(sampler={"name": "tpee"}), "sampler.name"),
    "sampler option Optuna refuses": (
        make_spec(sampler={"name": "tpe", "options": {"bogus": 1}}),
        "sampler.options.bogus",
    ),
    "not a mapping": ([make_spec()], ""),  # type: ignore[dict-item]
    "empty object": ({}, "name"),
}


@pytest.fixture
async def small_client(make_app: MakeApp) -> AsyncIterator[httpx.AsyncClient]:
    """An app that takes bodies of at most 2 KiB."""
    async with client_for(make_app(max_body_bytes=2048)) as http:
        yield http


def assert_error_shape(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"detail", "field", "problems"}
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


@pytest.mark.parametrize(("spec", "field"), INVALID_SPECS.values(), ids=INVALID_SPECS.keys())
async def test_invalid_specs_are_422_naming_the_field(
    client: httpx.AsyncClient, spec: Any, field: str
) -> None:
    response = await client.post("/v1/sweeps", json=spec)

    body = assert_error_shape(response, 422)
    assert (field or None) in [p["field"] for p in body["problems"]]
    assert all(p["message"] for p in body["problems"])
    assert (await client.get("/v1/sweeps")).json()["count"] == 0


async def test_every_problem_of_a_spec_is_listed(client: httpx.AsyncClient) -> None:
    spec = make_spec(training={"epochs": 0}, sampler={"name": "tpee"}, budget={"n_trials": 0})

    body = assert_error_shape(await client.post("/v1/sweeps", json=spec), 422)

    fields = {p["field"] for p in body["problems"]}
    assert {"training.epochs", "sampler.name", "budget.n_trials"} <= fields
    assert body["detail"] == f"{len(body['problems'])} problems in the spec"


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"{'name': 'x'}",
        b"",
        b"\xff\xfe",
        b"NaN",
        b'{"name": "x",}',
        b"null",
        b'{"priority": ' + b"9" * 5000 + b"}",
    ],
)
async def test_malformed_json_is_422_in_our_shape(
    client: httpx.AsyncClient, content: bytes
) -> None:
    response = await client.post(
        "/v1/sweeps", content=content, headers={"content-type": "application/json"}
    )

    body = assert_error_shape(response, 422)
    assert "JSON" in body["detail"] or "mapping" in body["detail"]


@pytest.mark.parametrize("depth", [40, 990, 100_000])
async def test_deeply_nested_bodies_are_422_not_a_crash(
    client: httpx.AsyncClient, depth: int
) -> None:
    nested = '{"a":' * depth + "1" + "}" * depth
    content = '{"name": "deep", "workload": {"name": "diabetes_linear", "params": ' + nested + "}}"

    response = await client.post(
        "/v1/sweeps", content=content.encode(), headers={"content-type": "application/json"}
    )

    assert "nests deeper" in assert_error_shape(response, 422)["detail"]


async def test_a_non_finite_number_in_a_spec_is_refused(client: httpx.AsyncClient) -> None:
    content = b'{"name": "n", "workload": {"name": "diabetes_linear"}, '
    content += b'"search_space": {"l1": 0, "l2": NaN}}'

    response = await client.post(
        "/v1/sweeps", content=content, headers={"content-type": "application/json"}
    )

    body = assert_error_shape(response, 422)
    assert body["field"] == "search_space.l2"


async def test_a_body_that_is_not_json_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/sweeps", content=b"name: x", headers={"content-type": "application/yaml"}
    )

    assert "Content-Type: application/json" in assert_error_shape(response, 415)["detail"]


async def test_an_oversized_body_is_413(small_client: httpx.AsyncClient) -> None:
    spec = make_spec(notify={"webhook_url": "https://example.com/" + "x" * 4096})

    response = await small_client.post("/v1/sweeps", json=spec)

    assert "2048 bytes" in assert_error_shape(response, 413)["detail"]


async def test_an_oversized_streamed_body_is_413(small_client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length to check
        for _ in range(10):
            yield b" " * 1024

    response = await small_client.post(
        "/v1/sweeps", content=chunks(), headers={"content-type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert_error_shape(response, 413)


async def test_the_default_limit_is_one_mebibyte(client: httpx.AsyncClient) -> None:
    padding = " " * (1024 * 1024)
    under = await client.post(
        "/v1/sweeps",
        content=b"{}" + b" " * (1024 * 1024 - 10),
        headers={"content-type": "application/json"},
    )
    over = await client.post(
        "/v1/sweeps", content=padding.encode() + b"{}", headers={"content-type": "application/json"}
    )

    assert_error_shape(under, 422)  # read and parsed: an empty spec
    assert_error_shape(over, 413)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**40}, "offset"),
        ({"status": "sleeping"}, "status"),
    ],
)
async def test_bad_queries_are_422_naming_the_parameter(
    client: httpx.AsyncClient, query: dict[str, Any], field: str
) -> None:
    body = assert_error_shape(await client.get("/v1/sweeps", params=query), 422)

    assert body["field"] == field
    assert body["problems"][0]["field"] == field


async def test_a_bad_force_flag_is_422(client: httpx.AsyncClient) -> None:
    sweep_id = (await client.post("/v1/sweeps", json=make_spec())).json()["id"]

    response = await client.delete(f"/v1/sweeps/{sweep_id}", params={"force": "maybe"})

    assert assert_error_shape(response, 422)["field"] == "force"


async def test_unknown_paths_are_404_in_our_shape(client: httpx.AsyncClient) -> None:
    body = assert_error_shape(await client.get("/v1/sweep"), 404)

    assert "/docs" in body["detail"]


async def test_wrong_methods_are_405_in_our_shape(client: httpx.AsyncClient) -> None:
    assert_error_shape(await client.put("/v1/sweeps"), 405)
    assert_error_shape(await client.post("/v1/workloads"), 405)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/sweeps", {"GET", "POST"}),
        ("PUT", "/v1/sweeps", {"GET", "POST"}),
        ("OPTIONS", "/v1/sweeps/0123456789ab", {"GET", "DELETE"}),
        ("PATCH", "/v1/sweeps/0123456789ab", {"GET", "DELETE"}),
        ("GET", "/v1/sweeps/0123456789ab/cancel", {"POST"}),
        ("POST", "/v1/workloads", {"GET"}),
    ],
)
async def test_405_lists_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path)

    assert_error_shape(response, 405)
    assert set(response.headers["allow"].split(", ")) == allowed


@pytest.mark.parametrize("declared", ["", "ten", "-1", "1e3"])
@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/batches/b"), ("POST", "/v1/sweeps")])
async def test_a_malformed_content_length_is_400_in_our_shape(
    client: httpx.AsyncClient, method: str, path: str, declared: str
) -> None:
    response = await client.request(method, path, headers={"content-length": declared})

    assert response.request.headers["content-length"] == declared
    assert assert_error_shape(response, 400)["field"] == "Content-Length"
