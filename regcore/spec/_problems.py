"""Problems with a spec: collecting them all, and saying each one in plain words.

Validators raise :func:`problems_error` with every problem they found (pydantic keeps each
one's location), and :func:`problems_from` turns the final ``ValidationError`` into
:class:`SpecProblem` objects whose messages say what is wrong and what to write instead.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

Loc = tuple[str | int, ...]


@dataclass(frozen=True, kw_only=True)
class SpecProblem:
    """One thing wrong with a spec: the dotted ``field`` at fault ("" for the whole
    document) and a ``message`` that says what to do about it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class SpecError(ValueError):
    """A sweep spec was refused; ``problems`` lists every reason, one per line in ``str()``."""

    def __init__(self, problems: Sequence[SpecProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def suggest(word: str, options: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``options``, or ``""``."""
    options = list(options)
    by_lower = {o.lower(): o for o in options}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


def listing(names: Sequence[str], *, last: str = "or") -> str:
    """``"a, b or c"`` (``last="and"``: ``"a, b and c"``)."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def problem(loc: Loc, message: str, value: Any = None) -> InitErrorDetails:
    """One problem at ``loc`` (relative to the model or field being validated)."""
    return InitErrorDetails(type=PydanticCustomError("spec", message), loc=loc, input=value)


def problems_error(
    details: Sequence[InitErrorDetails], title: str = "SweepSpec"
) -> ValidationError:
    """A ``ValidationError`` holding all of ``details``: raised inside a validator, pydantic
    keeps every one of them, each at its own location."""
    return ValidationError.from_exception_data(title, list(details))


def unknown_field(key: str, fields: Iterable[str]) -> str:
    """The message for an unknown key: "unknown field 'epoch'; did you mean 'epochs'?"."""
    fields = list(fields)
    hint = suggest(key, fields)
    return f"unknown field {key!r}{hint or '; remove it'} (fields here: {', '.join(fields)})"


def as_details(
    exc: ValidationError, *, fields: Iterable[str] | None = None
) -> list[InitErrorDetails]:
    """The errors of ``exc`` again as details, to be raised together with others; with
    ``fields``, unknown top-level keys get a suggestion from them."""
    known = list(fields) if fields is not None else None
    details = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if known is not None and err["type"] == "extra_forbidden" and len(loc) == 1:
            details.append(problem(loc, unknown_field(str(loc[0]), known), err.get("input")))
            continue
        kind = PydanticCustomError(err["type"], err["msg"], err.get("ctx"))
        details.append(InitErrorDetails(type=kind, loc=loc, input=err.get("input")))
    return details


def field_path(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _choices(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


# What to write for a required field that is missing, by path (list indices as "*").
_EXAMPLES = {
    "name": "name: digits-l1-vs-l2",
    "workload": "workload: {name: digits_mlp}",
    "workload.name": "name: digits_mlp",
    "search_space": "search_space: {l1: {low: 1.0e-6, high: 1.0e-2, log: true}, l2: 0}",
    "search_space.l1": "l1: {low: 1.0e-6, high: 1.0e-2, log: true}, or l1: 0",
    "search_space.l2": "l2: {low: 1.0e-6, high: 1.0e-2, log: true}, or l2: 0",
    "objectives.*.metric": "metric: val_loss",
    "objectives.*.direction": "direction: minimize (or maximize)",
    "sampler.name": "name: tpe",
    "pruner.name": "name: hyperband",
    "optimizer.name": "name: adam",
}


_BOUNDS = {"greater_than": ">", "greater_than_equal": "≥", "less_than": "<", "less_than_equal": "≤"}


def _readable(err: Any) -> str:
    """Pydantic's wording where it is clear, ours where it is not."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        generic = ".".join("*" if isinstance(p, int) else str(p) for p in err["loc"])
        example = _EXAMPLES.get(generic)
        return f"required; add it, e.g. {example}" if example else "required; add it"
    got = f", but got {_show(value)}"
    if kind == "spec":
        return str(err["msg"])
    if kind in _BOUNDS:
        limit = next(iter(ctx.values()), "?")
        return f"must be {_BOUNDS[kind]} {limit}{got}"
    if kind == "literal_error":
        options = _choices(str(ctx.get("expected", "")))
        hint = suggest(str(value), options) if isinstance(value, str) else ""
        return f"choose one of {', '.join(options)}{got}{hint}"
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"must be a whole number{got}"
    if kind in {"float_parsing", "float_type"}:
        return f"must be a number{got}"
    if kind == "finite_number" or (isinstance(value, float) and not math.isfinite(value)):
        return f"must be a finite number{got}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"must be true or false{got}"
    if kind in {"string_type", "string_sub_type"}:
        return f"must be text{got}"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"must be a mapping of fields{got}"
    if kind in {"list_type", "tuple_type"}:
        return f"must be a list{got}"
    if kind in {"too_short", "too_long"}:
        low, high = ctx.get("min_length"), ctx.get("max_length")
        size = "at least" if kind == "too_short" else "at most"
        limit = low if kind == "too_short" else high
        return f"give {size} {limit} item(s), but got {ctx.get('actual_length')}"
    if kind.startswith(("datetime", "date_")):
        return f"must be an ISO-8601 date and time such as 2030-01-31T06:00:00Z{got}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return f"{err['msg']}{got}"


def problems_from(exc: ValidationError) -> list[SpecProblem]:
    """Every error of ``exc`` as a :class:`SpecProblem` (duplicates dropped, order kept)."""
    seen: dict[tuple[str, str], SpecProblem] = {}
    for err in exc.errors():
        found = SpecProblem(field=field_path(tuple(err["loc"])), message=_readable(err))
        seen.setdefault((found.field, found.message), found)
    return list(seen.values())
