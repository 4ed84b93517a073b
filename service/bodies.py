"""Request bodies read by hand: JSON of bounded depth, and every problem of a spec listed
(as ``regsweep validate`` prints them) rather than pydantic's first."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from regcore.spec import SpecError
from service.errors import ApiError, Problem

# Far beyond any spec (about 5 levels), far below Python's recursion limit.
MAX_DEPTH = 32


async def read_json(request: Request, *, what: str) -> Any:
    """The body as JSON; 415 for another content type, 422 for bad JSON or deep nesting."""
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
        raise _too_deep() from None
    if _depth(data) > MAX_DEPTH:
        raise _too_deep()
    return data


def spec_problems(exc: SpecError) -> ApiError:
    """422 listing every problem, the first one's field at fault."""
    problems = [Problem(field=p.field or None, message=p.message) for p in exc.problems]
    first = problems[0]
    detail = first.message if len(problems) == 1 else f"{len(problems)} problems in the spec"
    return ApiError(422, detail, field=first.field, problems=problems)


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
