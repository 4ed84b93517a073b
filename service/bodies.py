"""Request bodies read by hand: JSON within :mod:`regcore.documents`' bounds (depth, items
per list, values in all), and every problem of a spec listed (as ``regsweep validate``
prints them) rather than pydantic's first, up to :data:`MAX_PROBLEMS`."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from regcore.documents import MAX_DEPTH, DocumentTooLargeError, check_size
from regcore.service.errors import ApiError, Problem, problems_error
from regcore.spec import SpecError


async def read_json(request: Request, *, what: str) -> Any:
    """The body as JSON; 415 for another content type, 422 for bad JSON or one over a bound."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if kind != "application/json" and not kind.endswith("+json"):
        raise ApiError(
            415, f"send the {what} as JSON with Content-Type: application/json, not {kind!r}"
        )
    try:
        data: Any = json.loads(await request.body())
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise ApiError(422, f"the body is not valid JSON ({where}); send a {what}") from None
    except UnicodeDecodeError:
        raise ApiError(422, f"the body is not UTF-8 JSON; send a {what} as JSON") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ApiError(422, f"the body is not usable JSON ({exc}); send a {what}") from None
    except RecursionError:  # nested past Python's stack
        raise ApiError(
            422, f"the body nests deeper than {MAX_DEPTH} levels; no {what} does"
        ) from None
    try:
        check_size(data)
    except DocumentTooLargeError as exc:
        at = f"{exc.field} " if exc.field else "the body "
        raise ApiError(422, f"{at}{exc}", field=exc.field or None) from None
    return data


def spec_problems(exc: SpecError) -> ApiError:
    """422 listing every problem (up to MAX_PROBLEMS), the first one's field at fault."""
    problems = [Problem(field=p.field or None, message=p.message) for p in exc.problems]
    return problems_error(problems, what="the spec")
