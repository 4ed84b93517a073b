"""``/v1/sweeps``: submit, list, read, page trials, cancel and delete sweeps.

A submitted sweep is a row in ``sweeps`` (the queue workers claim from) plus its Optuna
study, created here at once so that optuna-dashboard shows it, with the sweep's id in its
user attributes, before any worker starts.
"""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

import optuna
from fastapi import APIRouter, Depends, Query, Request, Response, status

from regcore import store
from regcore.spec import SpecError, SweepSpec, parse_spec
from regcore.spec._suggest import create_sampler
from regcore.studies import open_study
from service import study_view
from service.auth import ReaderDep, WriterDep
from service.deps import EngineDep, StorageDep, SweepDep
from service.errors import ERROR_RESPONSES, ApiError, Problem
from service.schemas import (
    SweepDetail,
    SweepOut,
    SweepPage,
    SweepStatus,
    TrialPage,
    TrialStateName,
)

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"], responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="items to skip")]
# Far beyond any spec (about 5 levels), far below Python's recursion limit.
MAX_DEPTH = 32
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
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(
            415, f"send the spec as JSON with Content-Type: application/json, not {kind!r}"
        )
    try:
        data: Any = json.loads(await request.body())
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise ApiError(422, f"the body is not valid JSON ({where}); send a sweep spec") from None
    except UnicodeDecodeError:
        raise ApiError(422, "the body is not UTF-8 JSON; send a sweep spec as JSON") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ApiError(422, f"the body is not usable JSON ({exc}); send a sweep spec") from None
    except RecursionError:  # nested past Python's stack
        raise _too_deep() from None
    if _depth(data) > MAX_DEPTH:
        raise _too_deep()
    try:
        spec = parse_spec(data)
    except SpecError as exc:
        problems = [Problem(field=p.field or None, message=p.message) for p in exc.problems]
        first = problems[0]
        detail = first.message if len(problems) == 1 else f"{len(problems)} problems in the spec"
        raise ApiError(422, detail, field=first.field, problems=problems) from None
    _check_sampler_options(spec)
    return spec


def _too_deep() -> ApiError:
    return ApiError(422, f"the body nests deeper than {MAX_DEPTH} levels; no spec does that")


def _depth(data: Any) -> int:
    """How deeply ``data`` nests, without recursion (a hostile body may nest very deep)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:
            children = item.values() if isinstance(item, dict) else item
            if isinstance(item, dict | list):
                stack.extend((child, level + 1) for child in children)
    return deepest


def _check_sampler_options(spec: SweepSpec) -> None:
    """The spec passes ``sampler.options`` to Optuna unchecked; building the sampler here
    turns a keyword it refuses into a 422, not a failed submission (or a failing worker)."""
    try:
        create_sampler(spec)
    except (TypeError, ValueError) as exc:
        message = f"Optuna's {spec.sampler.name} sampler refused these options ({exc}); fix them"
        problem = Problem(field="sampler.options", message=message)
        raise ApiError(422, message, field=problem.field, problems=[problem]) from None


_RENAME = "give the spec another name, or delete the old one first"
SpecDep = Annotated[SweepSpec, Depends(read_spec)]


def _refuse_taken_name(name: str, engine: EngineDep, storage: StorageDep) -> None:
    """409 when a sweep, or a study made outside the service (``regsweep run``), has the name:
    the new sweep would otherwise resume that study's trials."""
    with contextlib.suppress(store.SweepNotFoundError):
        store.get_sweep_by_name(engine, name)
        raise ApiError(409, f"a sweep named {name!r} exists; {_RENAME}", field="name")
    with contextlib.suppress(KeyError):
        storage.get_study_id_from_name(name)
        raise ApiError(409, f"an Optuna study named {name!r} exists; {_RENAME}", field="name")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_SPEC_BODY,
    responses={415: ERROR_RESPONSES[422] | {"description": "body is not JSON"}},
)
def create_sweep(
    owner: WriterDep,
    spec: SpecDep,
    engine: EngineDep,
    storage: StorageDep,
    request: Request,
    response: Response,
) -> SweepOut:
    """Submit a sweep spec: it is queued for the workers and its Optuna study created."""
    _refuse_taken_name(spec.name, engine, storage)
    row = store.insert_sweep(
        engine,
        spec_json=spec.to_json_dict(),
        name=spec.name,
        priority=spec.priority,
        owner=owner,
        deadline=spec.budget.deadline,
    )
    try:
        open_study(spec, storage, user_attrs={"sweep_id": row.id})
    except BaseException:
        store.delete_sweep(engine, row.id, force=True)  # no queued sweep without its study
        raise
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
    """List sweeps, newest first, optionally of one status."""
    rows, count = store.list_sweeps(engine, status=status, limit=limit, offset=offset)
    return SweepPage(data=[SweepOut.of(r) for r in rows], count=count)


@router.get("/{sweep_id}")
def read_sweep(
    _caller: ReaderDep, sweep: SweepDep, engine: EngineDep, storage: StorageDep
) -> SweepDetail:
    """One sweep: its spec, trial counts, progress and best trial (or Pareto front)."""
    counts = study_view.trial_counts(engine, sweep.study_name)
    failures = study_view.final_failures(engine, sweep.study_name)
    n_trials = int(sweep.spec.get("budget", {}).get("n_trials", 1))
    best, pareto = study_view.best_of(study_view.load(storage, sweep.study_name))
    return SweepDetail(
        **SweepOut.of(sweep).model_dump(),
        spec=sweep.spec,
        trials=counts,
        progress=study_view.progress(counts, final_failures=failures, n_trials=n_trials),
        best=best,
        pareto=pareto,
    )


@router.get("/{sweep_id}/trials")
def read_trials(
    _caller: ReaderDep,
    sweep: SweepDep,
    storage: StorageDep,
    state: TrialStateName | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> TrialPage:
    """The sweep's trials by number, with params, values, state and user attributes."""
    study = study_view.load(storage, sweep.study_name)
    data, count = study_view.trial_page(study, state=state, limit=limit, offset=offset)
    return TrialPage(data=data, count=count)


@router.post("/{sweep_id}/cancel")
def cancel_sweep(_owner: WriterDep, sweep: SweepDep, engine: EngineDep) -> SweepOut:
    """Cancel a queued or running sweep: no trial of it starts from now on."""
    return SweepOut.of(store.request_cancel(engine, sweep.id))


@router.delete("/{sweep_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_sweep(
    _owner: WriterDep,
    sweep: SweepDep,
    engine: EngineDep,
    storage: StorageDep,
    force: Annotated[bool, Query(description="delete even while running")] = False,
) -> Response:
    """Delete a sweep and its Optuna study (409 while running unless force=true)."""
    store.delete_sweep(engine, sweep.id, force=force)
    with contextlib.suppress(KeyError):  # the study is already gone
        optuna.delete_study(study_name=sweep.study_name, storage=storage)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
