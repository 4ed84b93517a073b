"""Webhook URLs carry their secret in the path or query: no reader sees one whole — not the
REST views (sweep, list, trials, exports, reports, batches), nor the Optuna study's ``spec``
attribute that optuna-dashboard shows without a token. Only the sweep's row, which workers
read to deliver, keeps it."""

from __future__ import annotations

import json

import optuna
import pytest

from regcore.store import batch_sweeps, get_sweep
from tests.service.conftest import MakeApp, client_for, make_spec

pytestmark = pytest.mark.anyio

# A host that does not resolve here is let through at submit (it may resolve where workers run).
HOOK = "https://hooks.regsweep-test.invalid:8443/services/T0/B0/S3CR3TPATH?token=S3CR3TQUERY"
SHOWN = "https://hooks.regsweep-test.invalid:8443/…"
SECRETS = ("S3CR3TPATH", "S3CR3TQUERY")


def _hides_the_secret(text: str) -> bool:
    return not any(secret in text for secret in SECRETS)


def _dashboard_attrs(url: str, study_name: str) -> str:
    """The study's user attributes as optuna-dashboard reads them: straight from storage."""
    storage = optuna.storages.RDBStorage(url)
    try:
        study_id = storage.get_study_id_from_name(study_name)
        return json.dumps(storage.get_study_user_attrs(study_id), ensure_ascii=False)
    finally:
        storage.engine.dispose()


async def test_no_rest_view_nor_the_dashboard_shows_a_sweeps_webhook_secret(
    make_app: MakeApp, database_url: str
) -> None:
    app = make_app(deliver_webhooks=False)
    async with client_for(app) as client:
        created = await client.post("/v1/sweeps", json=make_spec(notify={"webhook_url": HOOK}))
        assert created.status_code == 201, created.text
        sweep_id = created.json()["id"]
        views = {
            "create": created,
            "read": await client.get(f"/v1/sweeps/{sweep_id}"),
            "list": await client.get("/v1/sweeps"),
            "trials": await client.get(f"/v1/sweeps/{sweep_id}/trials"),
            "csv": await client.get(f"/v1/sweeps/{sweep_id}/trials", params={"format": "csv"}),
            "json": await client.get(f"/v1/sweeps/{sweep_id}/trials", params={"format": "json"}),
            "report": await client.get(f"/v1/sweeps/{sweep_id}/report"),
        }

    for view, response in views.items():
        assert response.status_code == 200 or view == "create", (view, response.text)
        assert _hides_the_secret(response.text), view
    assert views["read"].json()["spec"]["notify"]["webhook_url"] == SHOWN
    attrs = _dashboard_attrs(database_url, "sweep")
    assert _hides_the_secret(attrs)
    assert SHOWN in attrs  # redacted, not dropped: the dashboard still says where it goes
    # Delivery still has the whole URL: the row the workers read.
    row = get_sweep(app.state.database.engine, sweep_id)
    assert row.spec["notify"]["webhook_url"] == HOOK


async def test_no_batch_view_shows_a_webhook_secret(make_app: MakeApp, database_url: str) -> None:
    app = make_app(deliver_webhooks=False)
    batch = {
        "name": "hooked",
        "notify": {"webhook_url": HOOK},
        "template": make_spec("t", notify={"webhook_url": HOOK}),
        "matrix": {"training.seed": [0, 1]},
    }
    async with client_for(app) as client:
        created = await client.post("/v1/batches", json=batch)
        assert created.status_code == 201, created.text
        views = [
            created,
            await client.get("/v1/batches/hooked"),
            await client.get("/v1/batches/hooked/report"),
        ]
        views += [await client.get(f"/v1/sweeps/{s['id']}") for s in created.json()["sweeps"]]

    for response in views:
        assert response.status_code in (200, 201), response.text
        assert _hides_the_secret(response.text), response.request.url
    for row in batch_sweeps(app.state.database.engine, "hooked"):
        assert _hides_the_secret(_dashboard_attrs(database_url, row.study_name))
        assert row.spec["notify"]["webhook_url"] == HOOK
