"""``/v1/batches``: submit many sweeps as one named batch, and follow it.

Submitting queues every sweep of the batch (and creates their Optuna studies) or none, and
answers with an estimate of whether the batch fits before its deadline.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from regcore.service import batch_view, reports
from regcore.service.auth import ReaderDep, SubmitterDep
from regcore.service.bodies import read_json, spec_problems
from regcore.service.deps import EngineDep, StorageDep, refuse_taken_name
from regcore.service.errors import ERROR_RESPONSES, ApiError
from regcore.service.study_view import BestCache
from regcore.service.webhooks import refuse_unreachable_webhooks
from regcore.spec import SpecError
from regcore.spec.batch import BatchSpec, parse_batch
from regcore.store import (
    BatchNotFoundError,
    BatchRow,
    batch_sweeps,
    get_batch,
)
from regcore.sweeps import studies

router = APIRouter(prefix="/v1/batches", tags=["batches"], responses=ERROR_RESPONSES)
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/BatchSpec"},
                "example": {
                    "name": "nightly",
                    "deadline": "07:00",
                    "template": {
                        "name": "digits",
                        "workload": {"name": "digits_mlp"},
                        "search_space": {"l1": {"low": 1e-6, "high": 1e-2, "log": True}, "l2": 0},
                        "budget": {"n_trials": 20},
                    },
                    "matrix": {"search_space.method": ["proximal", "loss"]},
                },
            }
        },
    }
}


async def read_batch_body(request: Request) -> BatchSpec:
    """The body as a BatchSpec; 422 listing every problem of every sweep in it."""
    data = await read_json(request, what="batch")
    try:
        return await run_in_threadpool(parse_batch, data)  # off the event loop, as a spec
    except SpecError as exc:
        raise spec_problems(exc) from None


BatchDep = Annotated[BatchSpec, Depends(read_batch_body)]


@router.post("", status_code=status.HTTP_201_CREATED, openapi_extra=_BATCH_BODY)
def create_batch(
    caller: SubmitterDep,
    batch: BatchDep,
    engine: EngineDep,
    storage: StorageDep,
    request: Request,
    response: Response,
) -> batch_view.BatchCreated:
    """Submit a batch (sweeps, or a template and a matrix) with one deadline."""
    try:
        specs = batch.expand()
    except SpecError as exc:
        raise spec_problems(exc) from None
    where = "sweeps.{}" if batch.sweeps is not None else "template"
    refuse_unreachable_webhooks(
        request,
        [("notify.webhook_url", batch.notify.webhook_url)]
        + [
            (f"{where.format(i)}.notify.webhook_url", spec.notify.webhook_url)
            for i, spec in enumerate(specs)
        ],
    )
    for spec in specs:
        refuse_taken_name(spec.name, engine, storage)
    # Every study whole before any sweep of the batch is queued (claimable).
    row, sweeps = studies.create_batch(
        engine,
        storage,
        specs,
        name=batch.name,
        spec_json=batch.model_dump(mode="json"),
        owner=caller.name,
        deadline=batch.deadline,
        webhook_url=batch.notify.webhook_url,
    )
    response.headers["Location"] = str(request.app.url_path_for("read_batch", name=row.name))
    cache: BestCache = request.app.state.best_cache
    out = batch_view.batch_out(engine, storage, cache, row, sweeps)
    estimate = batch_view.estimate(engine, specs, deadline=batch.deadline)
    return batch_view.BatchCreated(**out.model_dump(), estimate=estimate)


def get_batch_or_404(name: str, engine: EngineDep) -> BatchRow:
    try:
        return get_batch(engine, name)
    except BatchNotFoundError as exc:
        raise ApiError(404, str(exc), field="name") from None


BatchRowDep = Annotated[BatchRow, Depends(get_batch_or_404)]


@router.get("/{name}")
def read_batch(
    _caller: ReaderDep, batch: BatchRowDep, engine: EngineDep, storage: StorageDep, request: Request
) -> batch_view.BatchOut:
    """A batch: every sweep's status, trials done/total, best so far and estimated finish."""
    cache: BestCache = request.app.state.best_cache
    return batch_view.batch_out(engine, storage, cache, batch, batch_sweeps(engine, batch.name))


@router.get("/{name}/report", response_model=None, responses={200: reports.HTML})
def read_batch_report(
    _caller: ReaderDep, batch: BatchRowDep, engine: EngineDep, storage: StorageDep
) -> HTMLResponse:
    """One self-contained HTML report of the batch: its sweeps side by side."""
    return reports.batch_response(storage, batch, batch_sweeps(engine, batch.name))
