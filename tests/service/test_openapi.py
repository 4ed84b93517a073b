"""The OpenAPI schema says what the service does: what each format of /trials returns, which
batches and webhook URLs it takes, and no number given as text or as a boolean."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI

from regcore.spec import SpecError, parse_spec
from tests.service.conftest import MakeApp, client_for, make_spec

pytestmark = pytest.mark.anyio


def validator(app: FastAPI, ref: str) -> jsonschema.Validator:
    """A JSON-schema validator of the app's OpenAPI ``ref`` (3.1: JSON Schema 2020-12)."""
    openapi = app.openapi()
    schema = {"$ref": ref, "components": openapi["components"]}
    return jsonschema.Draft202012Validator(schema)


def response_schema(app: FastAPI, path: str, media: str) -> dict[str, Any]:
    content = app.openapi()["paths"][path]["get"]["responses"]["200"]["content"]
    schema: dict[str, Any] = content[media]["schema"]
    return schema


async def test_every_format_of_trials_is_what_the_schema_says(make_app: MakeApp) -> None:
    app = make_app(deliver_webhooks=False)
    path = "/v1/sweeps/{sweep_id}/trials"
    json_schema = response_schema(app, path, "application/json")
    check = jsonschema.Draft202012Validator(
        {**json_schema, "components": app.openapi()["components"]}
    )
    async with client_for(app) as client:
        sweep_id = (await client.post("/v1/sweeps", json=make_spec())).json()["id"]
        page = await client.get(f"/v1/sweeps/{sweep_id}/trials")
        rows = await client.get(f"/v1/sweeps/{sweep_id}/trials", params={"format": "json"})
        csv = await client.get(f"/v1/sweeps/{sweep_id}/trials", params={"format": "csv"})

    assert isinstance(page.json(), dict)
    assert isinstance(rows.json(), list)
    assert rows.json()  # the λ = 0 baseline, waiting
    for answer in (page, rows):
        assert answer.headers["content-type"] == "application/json"
        check.validate(answer.json())
    assert csv.headers["content-type"].startswith("text/csv")
    assert response_schema(app, path, "text/csv") == {"type": "string"}


BATCHES_REFUSED = {
    "neither sweeps nor template": {"name": "b"},
    "both": {"name": "b", "sweeps": [make_spec()], "template": make_spec()},
    "no sweep": {"name": "b", "sweeps": []},
    "matrix without template": {"name": "b", "sweeps": [make_spec()], "matrix": {"x": [1]}},
    "an empty matrix entry": {"name": "b", "template": make_spec(), "matrix": {"x": []}},
}


@pytest.mark.parametrize("batch", BATCHES_REFUSED.values(), ids=BATCHES_REFUSED.keys())
async def test_the_schema_refuses_the_batches_the_service_refuses(
    make_app: MakeApp, batch: dict[str, Any]
) -> None:
    app = make_app(deliver_webhooks=False)
    async with client_for(app) as client:
        response = await client.post("/v1/batches", json=batch)

    assert response.status_code == 422, response.text
    assert not validator(app, "#/components/schemas/BatchSpec").is_valid(batch)


@pytest.mark.parametrize(
    "batch",
    [
        {"name": "b", "sweeps": [make_spec()]},
        {"name": "b", "template": make_spec(), "matrix": {"training.seed": [0, 1]}},
        {"name": "b", "template": make_spec(), "sweeps": None},
    ],
)
def test_the_schema_admits_the_batches_the_service_takes(
    make_app: MakeApp, batch: dict[str, Any]
) -> None:
    assert validator(make_app(), "#/components/schemas/BatchSpec").is_valid(batch)


WEBHOOKS = {
    "": False,
    "hooks.example.com/x": False,
    "ftp://hooks.example.com/x": False,
    "https://": False,
    "https://hooks example.com/x": False,
    "https://hooks.example.com:70000/x": False,
    "https://hooks.example.com/x\n": True,  # "$" in Python: the newline is dropped
    "https://hooks.example.com/services/T0/B0/xyz?token=a#b": True,
    "http://user:pw@hooks.example.com:8443": True,
    "https://[2001:db8::1]/hook": True,
}


@pytest.mark.parametrize(("url", "valid"), WEBHOOKS.items(), ids=repr)
async def test_webhook_urls_are_one_rule_in_the_schema_and_the_service(
    make_app: MakeApp, url: str, valid: bool
) -> None:
    app = make_app(deliver_webhooks=False, webhook_allow=["2001:db8::/32"])  # docs' network
    spec = make_spec(notify={"webhook_url": url})
    async with client_for(app) as client:
        response = await client.post("/v1/sweeps", json=spec)

    schema_says = validator(app, "#/components/schemas/NotifySpec").is_valid({"webhook_url": url})
    assert schema_says is valid
    # A valid URL whose host does not resolve here is let through (it may where workers run).
    assert response.status_code == (201 if valid else 422), response.text
    if not valid:
        assert response.json()["field"] == "notify.webhook_url"


COERCED = {
    "budget.n_trials": {"budget": {"n_trials": True}},
    "budget.n_trials ": {"budget": {"n_trials": "3"}},
    "training.epochs": {"training": {"epochs": "3"}},
    "priority": {"priority": "5"},
    "sampler.seed": {"sampler": {"seed": True}},
    "training.epochs  ": {"training": {"epochs": 3.0}},
}


@pytest.mark.parametrize(("field", "change"), COERCED.items(), ids=COERCED.keys())
async def test_numbers_are_not_coerced_from_text_or_booleans(
    client: httpx.AsyncClient, field: str, change: dict[str, Any]
) -> None:
    response = await client.post("/v1/sweeps", json=make_spec(**change))

    assert response.status_code == 422, response.text
    assert response.json()["field"] == field.strip()
    assert "whole number" in response.json()["detail"]
    with pytest.raises(SpecError):  # regsweep validate says the same
        parse_spec(make_spec(**change))


async def test_text_that_json_has_no_type_for_is_still_read(client: httpx.AsyncClient) -> None:
    # A deadline is ISO 8601 text, betas a list: JSON's forms of a datetime and a tuple.
    spec = make_spec(
        budget={"n_trials": 4, "deadline": "2030-01-31T06:00:00Z"},
        optimizer={"name": "adam", "lr": 1e-3, "betas": [0.9, 0.99]},
    )

    response = await client.post("/v1/sweeps", json=spec)

    assert response.status_code == 201, response.text
    read = (await client.get(f"/v1/sweeps/{response.json()['id']}")).json()
    assert read["spec"]["optimizer"]["betas"] == [0.9, 0.99]
    assert read["deadline"] == "2030-01-31T06:00:00Z"
