"""``/v1/sweeps``: submit, list, read, page trials, cancel and delete sweeps.

A submitted sweep is a row in ``sweeps`` (the queue workers claim from) plus its Optuna
study, created here at once so that optuna-dashboard shows it, with the sweep's id in its
user attributes, before any worker starts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import optuna
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from regcore import store
from regcore.service import reports, study_view
from regcore.service.auth import ReaderDep, SubmitterDep, require_manager
from regcore.service.bodies import read_json, spec_problems
from regcore.service.deps import EngineDep, StorageDep, SweepDep, refuse_taken_name
from regcore.service.errors import ERROR_RESPONSES
from regcore.service.schemas import (
    SweepDetail,
    SweepListItem,
    SweepOut,
    SweepPage,
    SweepStatus,
    TrialPage,
    TrialsAnswer,
    TrialStateName,
)
from regcore.service.webhooks import refuse_unreachable_webhooks
from regcore.spec import SpecError, SweepSpec, parse_spec, redact_secrets
from regcore.sweeps import export, studies

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"], responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="items to skip")]
_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/SweepSpec"},
                "example": {
                    "name": "digits-l1-vs-l2",
                    "workload": {"name": "digits_mlp", "params": {"hidden": [128]}},
                    "search_space": {
                        "l1": {"low": 1e-6, "high": 1e-2, "log": True},
                        "l2": {"low": 1e-6, "high": 1e-2, "log": True},
                        "method": ["weight_decay", "proximal"],
                    },
                    "budget": {"n_trials": 30},
                },
            }
        },
    }
}


async def read_spec(request: Request) -> SweepSpec:
    """The body as a SweepSpec; 422 listing every problem (as ``regsweep validate`` does)."""
    data = await read_json(request, what="sweep spec")
    try:
        # In a worker thread: validation builds the sampler and checks the workload, which
        # must not hold up the event loop (and /healthz with it).
        return await run_in_threadpool(parse_spec, data)
    except SpecError as exc:
        raise spec_problems(exc) from None


SpecDep = Annotated[SweepSpec, Depends(read_spec)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_SPEC_BODY,
    responses={415: ERROR_RESPONSES[422] | {"description": "body is not JSON"}},
)
def create_sweep(
    caller: SubmitterDep,
    spec: SpecDep,
    engine: EngineDep,
    storage: StorageDep,
    request: Request,
    response: Response,
) -> SweepOut:
    """Submit a sweep spec: it is queued for the workers and its Optuna study created."""
    refuse_unreachable_webhooks(request, [("notify.webhook_url", spec.notify.webhook_url)])
    refuse_taken_name(spec.name, engine, storage)
    row = studies.create_sweep(engine, storage, spec, owner=caller.name)
    response.headers["Location"] = str(request.app.url_path_for("read_sweep", sweep_id=row.id))
    return SweepOut.of(row)


@router.get("")
def read_sweeps(
    _caller: ReaderDep,
    engine: EngineDep,
    status: SweepStatus | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> SweepPage:
    """List sweeps, newest first, optionally of one status, each with its progress."""
    rows, count = store.list_sweeps(engine, status=status, limit=limit, offset=offset)
    counts = store.count_trials_by_study(engine, [r.study_name for r in rows])
    data = [
        SweepListItem(
            **SweepOut.of(r).model_dump(),
            progress=study_view.progress(
                counts[r.study_name], n_trials=int(r.spec.get("budget", {}).get("n_trials", 1))
            ),
        )
        for r in rows
    ]
    return SweepPage(data=data, count=count)


@router.get("/{sweep_id}")
def read_sweep(
    _caller: ReaderDep, sweep: SweepDep, engine: EngineDep, storage: StorageDep, request: Request
) -> SweepDetail:
    """One sweep: its spec, trials by state and why they failed, progress, best trial."""
    counts = store.count_trials(engine, sweep.study_name)
    cache: study_view.BestCache = request.app.state.best_cache
    failure_cache: study_view.FailureCache = request.app.state.failure_cache
    decision_cache: study_view.DecisionCache = request.app.state.decision_cache
    where = {"sweep_id": sweep.id, "study_name": sweep.study_name}
    with study_view.reading(storage, sweep):
        best, pareto = cache.get(storage, **where, count=counts.by_state["COMPLETE"])
        failures = failure_cache.get(storage, **where, count=counts.by_state["FAIL"])
        decision = decision_cache.get(storage, **where, count=decision_cache.key(counts))
    n_trials = int(sweep.spec.get("budget", {}).get("n_trials", 1))
    return SweepDetail(
        **SweepOut.of(sweep).model_dump(),
        spec=redact_secrets(sweep.spec),
        trials=dict(counts.by_state),
        confirmation_trials=dict(counts.confirm_by_state),
        progress=study_view.progress(counts, n_trials=n_trials),
        best=best,
        pareto=pareto,
        decision=decision,
        failures=failures,
    )


# One status, two shapes and two media types: what the schema must say for each format.
_TRIALS: dict[int | str, dict[str, Any]] = {
    200: {
        "model": TrialsAnswer,
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": (
            "a page of trials (TrialPage); with format=json every trial as a flat record "
            "(an array of TrialRecord), with format=csv the same records as CSV"
        ),
    }
}


@router.get("/{sweep_id}/trials", response_model=None, responses=_TRIALS)
def read_trials(
    _caller: ReaderDep,
    sweep: SweepDep,
    engine: EngineDep,
    storage: StorageDep,
    state: TrialStateName | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
    format: Annotated[
        Literal["csv", "json"] | None,
        Query(description="export every trial as flat rows (params_*, attrs_*) in a file"),
    ] = None,
) -> TrialPage | Response:
    """The sweep's trials by number, with params, values, state and user attributes."""
    with study_view.reading(storage, sweep):
        study = study_view.load_for(storage, engine, sweep)
        if format is not None:
            return _export(study, sweep.name, format)
        data, count = study_view.trial_page(study, state=state, limit=limit, offset=offset)
    return TrialPage(data=data, count=count)


def _export(study: optuna.Study | None, name: str, kind: str) -> Response:
    if study is None:
        text = "" if kind == "csv" else "[]"
    else:
        text = export.to_csv(study) if kind == "csv" else export.to_json(study)
    media = "text/csv" if kind == "csv" else "application/json"
    headers = {"Content-Disposition": f'attachment; filename="{name}-trials.{kind}"'}
    return Response(text, media_type=media, headers=headers)


@router.post("/{sweep_id}/cancel")
def cancel_sweep(
    caller: SubmitterDep, sweep: SweepDep, engine: EngineDep, request: Request
) -> SweepOut:
    """Cancel a queued or running sweep: no trial of it starts from now on (owner or admin)."""
    require_manager(caller, owner=sweep.owner, action=f"cancel sweep {sweep.id!r}")
    # The cancel writes the sweep's webhook events (and its batch's) in its transaction;
    # the courier delivers them now rather than at its next look.
    cancelled = store.request_cancel(engine, sweep.id)
    request.app.state.courier.wake()
    return SweepOut.of(cancelled)


@router.delete("/{sweep_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_sweep(
    caller: SubmitterDep,
    sweep: SweepDep,
    engine: EngineDep,
    storage: StorageDep,
    force: Annotated[bool, Query(description="delete even while running")] = False,
) -> Response:
    """Delete a sweep and its study (owner or admin; 409 while running unless force=true)."""
    require_manager(caller, owner=sweep.owner, action=f"delete sweep {sweep.id!r}")
    store.delete_sweep(engine, sweep.id, force=force)
    studies.delete_studies(storage, sweep.study_name)  # and its confirmation's
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{sweep_id}/report", response_model=None, responses={200: reports.HTML})
def read_report(
    _caller: ReaderDep, sweep: SweepDep, engine: EngineDep, storage: StorageDep
) -> HTMLResponse:
    """One self-contained HTML report of the sweep (it opens offline)."""
    return reports.sweep_response(storage, engine, sweep)
