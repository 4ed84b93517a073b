"""One JSON shape for every error the service sends, FastAPI's own included.

A client (the CLI, a CI job, curl) reads ``detail`` for a sentence to show, ``field`` to
point at the part of the request at fault, and ``problems`` for every problem of a refused
spec. FastAPI's defaults (a bare string for 404, a list of pydantic dicts for 422) would give
clients two shapes to parse, so their handlers are replaced here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPMethod, HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from regcore.store import SweepNameTakenError, SweepNotFoundError, SweepStateError
from regcore.sweeps.studies import SpecMismatchError

_log = logging.getLogger(__name__)

# Words for Starlette's own errors (unknown path, wrong method, ...), which carry none.
_STATUS_WORDS = {
    404: "no such resource; see /docs for the paths this service has",
    405: "method not allowed on this path; see /docs for the methods it accepts",
}


_NOT_AN_OBJECT = {"dict_type", "model_type", "model_attributes_type"}


class Problem(BaseModel):
    """One thing wrong with the request: the dotted ``field`` at fault and what to do."""

    field: str | None
    message: str


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx response."""

    detail: str
    field: str | None = None
    problems: list[Problem] = []


class ApiError(Exception):
    """Raised by routes and dependencies; becomes an :class:`ErrorBody` response."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        field: str | None = None,
        problems: Sequence[Problem] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.field = field
        self.problems = list(problems)
        self.headers = headers


def error_response(
    status_code: int,
    detail: str,
    *,
    field: str | None = None,
    problems: Sequence[Problem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(detail=detail, field=field, problems=list(problems))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=headers)


def _field_of(loc: Sequence[int | str]) -> str | None:
    # ("body", "training", "epochs") → "training.epochs"; ("query", "limit") → "limit".
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or None


def _message(err: dict[str, Any]) -> str:
    if err.get("type") == "json_invalid":
        reason = (err.get("ctx") or {}).get("error", "syntax error")
        return f"the body is not valid JSON ({reason} at character {err['loc'][-1]}); send JSON"
    if err.get("type") == "missing" and list(err.get("loc", ()))[:1] == ["body"]:
        return "a JSON body is required; send one with Content-Type: application/json"
    if list(err.get("loc", ())) == ["body"] and err.get("type") in _NOT_AN_OBJECT:
        return "the body must be a JSON object sent with Content-Type: application/json"
    got = repr(err.get("input"))
    got = got if len(got) <= 80 else got[:77] + "..."
    return f"{err.get('msg', 'invalid')}, but got {got}"


#: Problems listed in one error (the rest are counted in a last one), and characters of one
#: message: a refusal costs the client a few KiB at most, however many problems a body has.
MAX_PROBLEMS = 50
MAX_MESSAGE = 500


def problems_error(problems: Sequence[Problem], *, what: str = "the request") -> ApiError:
    """422 for ``problems``: one per field (the items of one list count as one field, the
    first shown with how many more there are), at most :data:`MAX_PROBLEMS` of them and then
    one that counts the rest, each message cut at :data:`MAX_MESSAGE` characters."""
    groups: dict[str | None, list[Problem]] = {}
    for p in problems:
        groups.setdefault(_list_of(p.field), []).append(p)
    shown = []
    for same in list(groups.values())[:MAX_PROBLEMS]:
        more = f" (and {len(same) - 1} more in this list)" if len(same) > 1 else ""
        shown.append(Problem(field=same[0].field, message=_cut(same[0].message) + more))
    if len(groups) > MAX_PROBLEMS:
        rest = len(groups) - MAX_PROBLEMS
        shown.append(Problem(field=None, message=f"... and {rest} more; fix these first"))
    first = shown[0] if shown else Problem(field=None, message=f"{what} is invalid")
    detail = first.message if len(groups) == 1 else f"{len(groups)} problems in {what}"
    return ApiError(422, detail, field=first.field, problems=shown)


def _list_of(field: str | None) -> str | None:
    """``search_space.method.3`` → ``search_space.method``: a list's items are one field."""
    if field is None:
        return None
    head, _, last = field.rpartition(".")
    return _list_of(head) if head and last.isdigit() else field


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [Problem(field=_field_of(e["loc"]), message=_message(e)) for e in exc.errors()]
    return await _api_error(request, problems_error(problems))


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(
        exc.status_code,
        exc.detail,
        field=exc.field,
        problems=exc.problems,
        headers=exc.headers,
    )


def _allowed_methods(request: Request) -> str:
    # Starlette's 405 names the methods of the first route whose path matched, but a path
    # (/v1/sweeps: GET and POST) is often served by several routes, one per method. Asking
    # the router about each method also sees into FastAPI's included routers.
    routes = request.app.router.routes
    allowed = [
        method.value
        for method in HTTPMethod
        if any(
            route.matches({**request.scope, "method": method.value})[0] is Match.FULL
            for route in routes
        )
    ]
    return ", ".join(allowed)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    given = exc.detail if isinstance(exc.detail, str) else None
    if given is None or given == HTTPStatus(exc.status_code).phrase:
        given = _STATUS_WORDS.get(exc.status_code, given)  # Starlette's bare phrase: say more
    headers = dict(exc.headers or {})
    allowed = _allowed_methods(request) if exc.status_code == 405 else ""
    if allowed:
        headers["Allow"] = allowed
    return error_response(exc.status_code, given or f"HTTP {exc.status_code}", headers=headers)


# The store's and the studies' errors already say what to do; only the status is added.
_DOMAIN: dict[type[Exception], tuple[int, str | None]] = {
    SweepNotFoundError: (404, "sweep_id"),
    SweepNameTakenError: (409, "name"),
    SpecMismatchError: (409, "name"),
    SweepStateError: (409, None),
}


async def _domain(request: Request, exc: Exception) -> JSONResponse:
    status_code, field = next(v for k, v in _DOMAIN.items() if isinstance(exc, k))
    return error_response(status_code, str(exc), field=field)


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    # The message may contain the database URL (with its password): log, never echo.
    _log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503, "the database is unavailable; retry shortly (GET /readyz says when it is back)"
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises the exception after this response, so the server logs it once.
    return error_response(500, "internal error; the service log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through :class:`ErrorBody`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    for kind in _DOMAIN:
        app.add_exception_handler(kind, _domain)
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(Exception, _unexpected)


# Documented on every route so that clients (and schemathesis) know the shape of each error.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": words}
    for code, words in {
        400: "malformed request headers (Content-Length not a whole number of bytes)",
        401: "missing or wrong bearer token",
        403: "the token's role or ownership does not allow it",
        404: "no such sweep",
        409: "conflicts with the sweep's state",
        413: "body over the size limit",
        422: "invalid request or spec; every problem listed",
        503: "database unavailable",
    }.items()
}
