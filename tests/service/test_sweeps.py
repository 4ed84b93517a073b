"""``/v1/sweeps`` on SQLite and PostgreSQL: submit, list, read, trials, cancel, delete.

Trials are told through Optuna on the same database, as a worker would, so the API reads
what a real sweep leaves behind.
"""

from __future__ import annotations

import csv
import io
import math

import httpx
import optuna
import pytest
import sqlalchemy as sa

from regcore.store import create_engine_for, create_storage, list_outbox_events
from tests.service.conftest import MakeApp, client_for, make_spec
from tests.waiting import wait_until
from tests.webhooks import receiving

pytestmark = pytest.mark.anyio


async def submit(client: httpx.AsyncClient, name: str = "sweep", **overrides: object) -> str:
    response = await client.post("/v1/sweeps", json=make_spec(name, **overrides))
    assert response.status_code == 201, response.text
    sweep_id: str = response.json()["id"]
    return sweep_id


_SWEEPS = sa.table("sweeps", sa.column("id"), sa.column("status"))


def _set_status(database_url: str, sweep_id: str, status: str) -> None:
    # The store only moves a sweep along its life (claims, cancels, ends); these tests need
    # one in a given state at once, so its row is written directly.
    engine = create_engine_for(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.update(_SWEEPS).where(_SWEEPS.c.id == sweep_id).values(status=status)
            )
    finally:
        engine.dispose()


def _tell(database_url: str, name: str, *results: float | tuple[float, float] | None) -> None:
    """Finish one trial per result (None: prune it), as a worker does."""
    storage = create_storage(database_url)
    study = optuna.load_study(study_name=name, storage=storage)
    for result in results:
        trial = study.ask()
        trial.suggest_float("l2", 1e-6, 1e-2, log=True)  # the baseline's is fixed
        trial.set_user_attr("method", "proximal")
        if result is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, result)
    storage.engine.dispose()


async def test_submit_queues_the_sweep_and_creates_its_study(
    client: httpx.AsyncClient, database_url: str
) -> None:
    response = await client.post("/v1/sweeps", json=make_spec("digits-a"))

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued"
    assert body["name"] == body["study_name"] == "digits-a"
    assert body["owner"] is None  # auth off
    assert response.headers["location"] == f"/v1/sweeps/{body['id']}"
    study = optuna.load_study(study_name="digits-a", storage=create_storage(database_url))
    assert study.user_attrs["sweep_id"] == body["id"]
    assert study.user_attrs["spec"]["name"] == "digits-a"


async def test_read_sweep_shows_spec_counts_and_progress(client: httpx.AsyncClient) -> None:
    sweep_id = await submit(client, "read-me")

    response = await client.get(f"/v1/sweeps/{sweep_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == sweep_id
    assert body["spec"]["workload"]["name"] == "diabetes_linear"
    assert body["spec"]["budget"]["n_trials"] == 4
    assert body["trials"] == {"RUNNING": 0, "COMPLETE": 0, "PRUNED": 0, "FAIL": 0, "WAITING": 1}
    assert body["progress"] == {"finished": 0, "running": 0, "n_trials": 4, "fraction": 0.0}
    assert body["best"] is None
    assert body["pareto"] is None
    assert body["created_at"].endswith("Z") or body["created_at"].endswith("+00:00")


async def test_read_sweep_reports_the_best_trial(
    client: httpx.AsyncClient, database_url: str
) -> None:
    sweep_id = await submit(client, "best-of")
    _tell(database_url, "best-of", 0.5, 0.2, None, math.inf)

    body = (await client.get(f"/v1/sweeps/{sweep_id}")).json()

    assert body["trials"]["COMPLETE"] == 3
    assert body["trials"]["PRUNED"] == 1
    assert body["progress"]["finished"] == 4
    assert body["progress"]["fraction"] == 1.0
    assert body["best"]["values"] == [0.2]
    assert body["best"]["state"] == "COMPLETE"
    assert body["best"]["user_attrs"]["method"] == "proximal"


async def test_read_sweep_follows_the_best_as_trials_complete(
    client: httpx.AsyncClient, database_url: str
) -> None:
    sweep_id = await submit(client, "moving-best")
    _tell(database_url, "moving-best", 0.5)
    first = (await client.get(f"/v1/sweeps/{sweep_id}")).json()
    _tell(database_url, "moving-best", 0.7, None)  # worse, and pruned: the best stays
    second = (await client.get(f"/v1/sweeps/{sweep_id}")).json()
    _tell(database_url, "moving-best", 0.1)
    third = (await client.get(f"/v1/sweeps/{sweep_id}")).json()

    assert first["best"]["values"] == second["best"]["values"] == [0.5]
    assert second["trials"]["COMPLETE"] == 2
    assert third["best"]["values"] == [0.1]
    assert third["progress"]["finished"] == 4


async def test_two_objectives_report_the_pareto_front(
    client: httpx.AsyncClient, database_url: str
) -> None:
    objectives = [
        {"metric": "val_loss", "direction": "minimize"},
        {"metric": "sparsity", "direction": "maximize"},
    ]
    sweep_id = await submit(client, "pareto", objectives=objectives)
    _tell(database_url, "pareto", (0.1, 0.1), (0.3, 0.9), (0.4, 0.5))

    body = (await client.get(f"/v1/sweeps/{sweep_id}")).json()

    assert body["best"] is None
    assert sorted(t["values"] for t in body["pareto"]) == [[0.1, 0.1], [0.3, 0.9]]


async def test_list_pages_and_filters_by_status(
    client: httpx.AsyncClient, database_url: str
) -> None:
    ids = [await submit(client, f"list-{i}") for i in range(3)]
    _set_status(database_url, ids[0], "running")

    first = (await client.get("/v1/sweeps", params={"limit": 2})).json()
    second = (await client.get("/v1/sweeps", params={"limit": 2, "offset": 2})).json()
    running = (await client.get("/v1/sweeps", params={"status": "running"})).json()

    assert first["count"] == second["count"] == 3
    assert len(first["data"]) == 2
    assert len(second["data"]) == 1
    assert {s["id"] for s in first["data"] + second["data"]} == set(ids)
    assert running["count"] == 1
    assert running["data"][0]["id"] == ids[0]


async def test_list_shows_each_sweeps_progress(
    client: httpx.AsyncClient, database_url: str
) -> None:
    done = await submit(client, "done", budget={"n_trials": 3})
    half = await submit(client, "half")
    fresh = await submit(client, "fresh", budget={"n_trials": 5})
    _tell(database_url, "done", 0.5, 0.2, None)
    _tell(database_url, "half", 0.4, math.inf)  # a diverged trial still used budget
    storage = create_storage(database_url)
    optuna.load_study(study_name="fresh", storage=storage).ask()  # left running
    storage.engine.dispose()

    body = (await client.get("/v1/sweeps")).json()

    progress = {s["id"]: s["progress"] for s in body["data"]}
    assert progress == {
        done: {"finished": 3, "running": 0, "n_trials": 3, "fraction": 1.0},
        half: {"finished": 2, "running": 0, "n_trials": 4, "fraction": 0.5},
        fresh: {"finished": 0, "running": 1, "n_trials": 5, "fraction": 0.0},
    }


async def test_trials_are_paged_with_params_values_and_attrs(
    client: httpx.AsyncClient, database_url: str
) -> None:
    sweep_id = await submit(client, "trials")
    _tell(database_url, "trials", 0.4, 0.3)

    page = (await client.get(f"/v1/sweeps/{sweep_id}/trials", params={"limit": 2})).json()
    rest = (await client.get(f"/v1/sweeps/{sweep_id}/trials", params={"offset": 2})).json()
    complete = await client.get(f"/v1/sweeps/{sweep_id}/trials", params={"state": "COMPLETE"})

    assert page["count"] == 2
    assert [t["number"] for t in page["data"]] == [0, 1]
    baseline = page["data"][0]  # the λ = 0 baseline, enqueued at submission, ran first
    assert baseline["user_attrs"]["baseline"] is True
    assert set(baseline["params"]) == {"l2"}
    assert baseline["values"] == [0.4]
    assert baseline["duration_s"] is not None
    assert baseline["duration_s"] >= 0
    assert rest == {"data": [], "count": 2}
    assert complete.json()["count"] == 2


async def test_cancel_stops_a_queued_sweep(client: httpx.AsyncClient) -> None:
    sweep_id = await submit(client, "cancel-me")

    response = await client.post(f"/v1/sweeps/{sweep_id}/cancel")
    again = await client.post(f"/v1/sweeps/{sweep_id}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancel_requested"] is True
    assert again.status_code == 200  # cancelling twice changes nothing


async def test_cancel_of_a_finished_sweep_is_a_conflict(
    client: httpx.AsyncClient, database_url: str
) -> None:
    sweep_id = await submit(client, "done")
    _set_status(database_url, sweep_id, "completed")

    response = await client.post(f"/v1/sweeps/{sweep_id}/cancel")

    assert response.status_code == 409
    assert "completed" in response.json()["detail"]


async def test_delete_removes_the_sweep_and_its_study(
    client: httpx.AsyncClient, database_url: str
) -> None:
    sweep_id = await submit(client, "delete-me")

    response = await client.delete(f"/v1/sweeps/{sweep_id}")

    assert response.status_code == 204
    assert (await client.get(f"/v1/sweeps/{sweep_id}")).status_code == 404
    names = optuna.get_all_study_names(storage=create_storage(database_url))
    assert "delete-me" not in names
    assert (await client.post("/v1/sweeps", json=make_spec("delete-me"))).status_code == 201


async def test_delete_of_a_running_sweep_needs_force(
    client: httpx.AsyncClient, database_url: str
) -> None:
    sweep_id = await submit(client, "busy")
    _set_status(database_url, sweep_id, "running")

    refused = await client.delete(f"/v1/sweeps/{sweep_id}")
    forced = await client.delete(f"/v1/sweeps/{sweep_id}", params={"force": "true"})

    assert refused.status_code == 409
    assert "force" in refused.json()["detail"]
    assert forced.status_code == 204
    assert (await client.get(f"/v1/sweeps/{sweep_id}")).status_code == 404


async def test_a_taken_name_is_a_conflict(client: httpx.AsyncClient) -> None:
    await submit(client, "twice")

    response = await client.post("/v1/sweeps", json=make_spec("twice"))

    assert response.status_code == 409
    assert response.json()["field"] == "name"
    assert (await client.get("/v1/sweeps")).json()["count"] == 1


async def test_a_study_made_outside_the_service_blocks_its_name(
    client: httpx.AsyncClient, database_url: str
) -> None:
    optuna.create_study(study_name="local-run", storage=create_storage(database_url))

    response = await client.post("/v1/sweeps", json=make_spec("local-run"))

    assert response.status_code == 409
    assert "study" in response.json()["detail"]
    assert (await client.get("/v1/sweeps")).json()["count"] == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/sweeps/{id}"),
        ("GET", "/v1/sweeps/{id}/trials"),
        ("POST", "/v1/sweeps/{id}/cancel"),
        ("DELETE", "/v1/sweeps/{id}"),
    ],
)
@pytest.mark.parametrize("sweep_id", ["0123456789ab", "not-an-id", "%00", "x" * 300])
async def test_unknown_ids_are_404(
    client: httpx.AsyncClient, method: str, path: str, sweep_id: str
) -> None:
    response = await client.request(method, path.replace("{id}", sweep_id))

    assert response.status_code == 404
    body = response.json()
    assert body["field"] == "sweep_id"
    assert "GET /v1/sweeps" in body["detail"]


async def test_trials_export_as_csv_and_json(client: httpx.AsyncClient, database_url: str) -> None:
    sweep_id = await submit(client, "exported")
    _tell(database_url, "exported", 0.5, None, math.inf)

    as_csv = await client.get(f"/v1/sweeps/{sweep_id}/trials", params={"format": "csv"})
    as_json = await client.get(f"/v1/sweeps/{sweep_id}/trials", params={"format": "json"})

    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'filename="exported-trials.csv"' in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["state"] for r in rows] == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert rows[0]["attrs_method"] == "proximal"
    records = as_json.json()
    assert [r["value_0"] for r in records] == [0.5, None, None]  # inf is null in JSON
    assert "params_l2" in records[0]


async def test_cancel_sends_the_sweeps_webhook_once(make_app: MakeApp) -> None:
    # Loopback is refused unless allowed; a poll far away: the cancel itself wakes delivery.
    app = make_app(webhook_allow=["127.0.0.1"], webhook_poll_s=300)
    with receiving() as receiver:
        async with app.router.lifespan_context(app), client_for(app) as client:
            sweep_id = await submit(client, "hooked", notify={"webhook_url": receiver.url})
            await client.post(f"/v1/sweeps/{sweep_id}/cancel")
            await client.post(f"/v1/sweeps/{sweep_id}/cancel")  # already cancelled: no second
            engine = app.state.database.engine

            def delivered() -> bool:
                return all(e.delivered_at is not None for e in list_outbox_events(engine))

            # Once recorded as delivered, no deliverer takes the event again.
            wait_until(delivered, 30, "the webhook, recorded as delivered")
            assert len(list_outbox_events(engine, sweep_id=sweep_id)) == 1

    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert (body["event"], body["sweep_id"], body["status"]) == (
        "sweep.finished",
        sweep_id,
        "cancelled",
    )
    assert body["trials"]["WAITING"] == 1  # the baseline never ran
    assert len(body["idempotency_key"]) == 32


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/?token=SECRET",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
        "http://localhost/hook",
    ],
)
async def test_a_webhook_target_the_cluster_must_not_reach_is_refused_at_submit(
    client: httpx.AsyncClient, url: str
) -> None:
    response = await client.post("/v1/sweeps", json=make_spec(notify={"webhook_url": url}))

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "notify.webhook_url"
    assert "REGSWEEP_WEBHOOK_ALLOW" in body["detail"]
    assert "SECRET" not in response.text
    assert (await client.get("/v1/sweeps")).json()["count"] == 0


async def test_the_allow_list_admits_its_networks_at_submit(make_app: MakeApp) -> None:
    async with client_for(make_app(webhook_allow=["169.254.0.0/16"])) as client:
        hook = {"webhook_url": "http://169.254.169.254/hook"}
        allowed = await client.post("/v1/sweeps", json=make_spec("allowed", notify=hook))
        private = {"webhook_url": "http://10.0.0.7/hook"}
        refused = await client.post("/v1/sweeps", json=make_spec("refused", notify=private))

    assert allowed.status_code == 201, allowed.text
    assert refused.status_code == 422


async def test_a_batch_with_a_refused_webhook_is_refused_whole(client: httpx.AsyncClient) -> None:
    metadata = {"webhook_url": "http://169.254.169.254/hook"}
    batch = {
        "name": "hooked",
        "notify": metadata,
        "sweeps": [make_spec("ok"), make_spec("bad", notify={"webhook_url": "http://[::1]/x"})],
    }

    response = await client.post("/v1/batches", json=batch)

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "notify.webhook_url"
    assert [p["field"] for p in body["problems"]] == [
        "notify.webhook_url",
        "sweeps.1.notify.webhook_url",
    ]
    assert all("REGSWEEP_WEBHOOK_ALLOW" in p["message"] for p in body["problems"])
    assert (await client.get("/v1/sweeps")).json()["count"] == 0
