"""A sweep deleted while it is read answers 404, never 500 (Optuna's KeyError 'Record does
not exist.'): the delete is made to land at an exact point of the read — before its study is
loaded, or after, while the study is read — by the real store and Optuna functions the
DELETE route calls, run from a database event of the reading engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from regcore import store
from regcore.store import create_storage
from tests.service.conftest import MakeApp, client_for, make_spec

pytestmark = pytest.mark.anyio

# The statements of a read: 1 finds the study by name, 2-3 read its directions (the load),
# 4 on read its trials, attributes and values.
BEFORE_THE_LOAD, WHILE_READ = 1, 4


@contextmanager
def deleted_before_statement(
    app: FastAPI, database_url: str, sweep_id: str, study_name: str, number: int
) -> Iterator[list[str]]:
    """Delete the sweep (row, then study, as DELETE /v1/sweeps/{id} does) just before the
    storage's ``number``-th SELECT from now; yields the statements seen."""
    engine = app.state.database.storage.engine
    seen: list[str] = []

    def delete_first(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            return
        seen.append(statement)
        if len(seen) == number:
            store.delete_sweep(app.state.database.engine, sweep_id, force=True)
            other = create_storage(database_url, pool_size=1)  # not the reader's session
            optuna.delete_study(study_name=study_name, storage=other)
            other.engine.dispose()

    sa.event.listen(engine, "before_cursor_execute", delete_first)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", delete_first)


@pytest.mark.parametrize("moment", [BEFORE_THE_LOAD, WHILE_READ], ids=["before", "while"])
@pytest.mark.parametrize("read", ["report", "trials", "trials?format=json", "trials?format=csv"])
async def test_a_read_of_a_sweep_deleted_meanwhile_is_404(
    make_app: MakeApp, database_url: str, read: str, moment: int
) -> None:
    app = make_app(deliver_webhooks=False)
    async with client_for(app) as client:
        sweep_id = (await client.post("/v1/sweeps", json=make_spec("racy"))).json()["id"]
        with deleted_before_statement(app, database_url, sweep_id, "racy", moment) as seen:
            response = await client.get(f"/v1/sweeps/{sweep_id}/{read}")
        after = await client.get(f"/v1/sweeps/{sweep_id}")

    assert len(seen) >= moment, "the delete never happened: the read ended first"
    assert response.status_code == 404, response.text
    body = response.json()
    assert body["field"] == "sweep_id"
    assert sweep_id in body["detail"]
    assert after.status_code == 404


@pytest.mark.parametrize("moment", [BEFORE_THE_LOAD, WHILE_READ], ids=["before", "while"])
async def test_reading_a_sweep_while_it_is_deleted_never_fails(
    make_app: MakeApp, database_url: str, moment: int
) -> None:
    app = make_app(deliver_webhooks=False)
    async with client_for(app) as client:
        sweep_id = (await client.post("/v1/sweeps", json=make_spec("racy"))).json()["id"]
        with deleted_before_statement(app, database_url, sweep_id, "racy", moment) as seen:
            response = await client.get(f"/v1/sweeps/{sweep_id}")

    assert len(seen) >= moment
    # Its row was read before the delete landed: shown as read, or 404; never a 500.
    assert response.status_code in (200, 404), response.text


# A batch report loads both sweeps' studies (3 statements each), then reads them.
@pytest.mark.parametrize("moment", [BEFORE_THE_LOAD, 2 * 3 + 1], ids=["before", "while"])
async def test_a_batch_report_leaves_out_a_sweep_deleted_while_it_is_made(
    make_app: MakeApp, database_url: str, moment: int
) -> None:
    app = make_app(deliver_webhooks=False)
    batch = {"name": "nightly", "template": make_spec("t"), "matrix": {"training.seed": [0, 1]}}
    async with client_for(app) as client:
        first, second = (await client.post("/v1/batches", json=batch)).json()["sweeps"]
        with deleted_before_statement(
            app, database_url, first["id"], first["study_name"], moment
        ) as seen:
            report = await client.get("/v1/batches/nightly/report")
        with deleted_before_statement(
            app, database_url, second["id"], second["study_name"], moment
        ):
            read = await client.get("/v1/batches/nightly")

    assert len(seen) >= moment
    assert report.status_code == 200, report.text
    assert first["name"] not in report.text
    assert second["name"] in report.text
    assert read.status_code == 200, read.text
