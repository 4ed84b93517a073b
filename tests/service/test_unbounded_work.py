"""Small requests that stand for unbounded work are refused before the work, with a 422 of
bounded size: a batch matrix of a million sweeps, tens of thousands of method names, a
sampler option that sizes a worker's memory."""

from __future__ import annotations

import json

import httpx
import pytest

from regcore.documents import MAX_ITEMS
from regcore.service.errors import MAX_PROBLEMS
from tests.service.conftest import make_spec

pytestmark = pytest.mark.anyio


async def test_a_matrix_of_a_million_sweeps_is_refused_before_expanding(
    client: httpx.AsyncClient,
) -> None:
    # The 363-byte matrix: 6 keys × 10 values.
    matrix = {f"workload.params.p{i}": list(range(10)) for i in range(6)}
    body = {"name": "huge", "template": make_spec("t"), "matrix": matrix}
    assert len(json.dumps(matrix)) < 400

    response = await client.post("/v1/batches", json=body)

    assert response.status_code == 422, response.text
    assert "= 1000000 sweeps" in response.json()["detail"]
    assert "at most 500" in response.json()["detail"]
    assert (await client.get("/v1/sweeps")).json()["count"] == 0


async def test_ninety_thousand_method_names_get_one_short_problem(
    client: httpx.AsyncClient,
) -> None:
    names = [f"m{i}" for i in range(90_000)]
    spec = make_spec(search_space={"l1": 0, "l2": 0, "method": names})

    response = await client.post("/v1/sweeps", json=spec)

    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "search_space.method"
    assert f"at most {MAX_ITEMS}" in body["detail"]
    assert len(response.content) < 1024


async def test_a_refusal_lists_one_problem_per_field_and_at_most_a_page(
    client: httpx.AsyncClient,
) -> None:
    unknown_methods = [f"m{i}" for i in range(MAX_ITEMS)]  # the most a list may have
    one_list = make_spec(search_space={"l1": 0, "l2": 0, "method": unknown_methods})
    many_fields = make_spec(**{f"x{i}": 1 for i in range(2 * MAX_PROBLEMS)})

    listed = await client.post("/v1/sweeps", json=one_list)
    paged = await client.post("/v1/sweeps", json=many_fields)

    assert (listed.status_code, paged.status_code) == (422, 422)
    (problem,) = listed.json()["problems"]
    assert problem["field"] == "search_space.method.0"
    assert problem["message"].endswith(f"(and {MAX_ITEMS - 1} more in this list)")
    problems = paged.json()["problems"]
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1]["message"] == f"... and {MAX_PROBLEMS} more; fix these first"
    assert paged.json()["detail"] == f"{2 * MAX_PROBLEMS} problems in the spec"
    assert max(len(listed.content), len(paged.content)) < 16 * 1024


async def test_a_sampler_option_that_sizes_memory_is_refused(client: httpx.AsyncClient) -> None:
    spec = make_spec(sampler={"name": "tpe", "options": {"n_ei_candidates": 10**9}})

    response = await client.post("/v1/sweeps", json=spec)

    assert response.status_code == 422
    assert response.json()["field"] == "sampler.options.n_ei_candidates"
    assert "at most 1024" in response.json()["detail"]
