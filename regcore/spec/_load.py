"""Reading a spec from data, a JSON file or a YAML file; every failure is a SpecError."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from regcore import documents
from regcore.spec._problems import SpecError, SpecProblem, problems_from
from regcore.spec._sweep import SweepSpec


def _refuse(message: str) -> SpecError:
    return SpecError([SpecProblem(field="", message=message)])


def parse_spec(data: Any) -> SweepSpec:
    """A :class:`SweepSpec` from plain data (a mapping, as JSON or YAML gives it).

    Raises :class:`SpecError` listing every problem, each with its field and its fix.
    """
    if isinstance(data, Mapping) and not isinstance(data, dict):
        data = dict(data)
    if not isinstance(data, dict):
        kind = "nothing" if data is None else f"a {type(data).__name__}"
        raise _refuse(
            "a sweep spec is a mapping of fields (name, workload, search_space, ...), "
            f"but got {kind}"
        )
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc)
    # In the order of the spec's sections (unknown keys first), each section's own order kept.
    order = {name: i for i, name in enumerate(SweepSpec.model_fields)}
    problems.sort(key=lambda p: order.get(p.field.split(".")[0], -1))
    raise SpecError(problems)


def read_document(path: os.PathLike[str] | str) -> Any:
    """A JSON (``.json``) or YAML file's contents; SpecError when it cannot be read."""
    try:
        return documents.read_document(path)
    except documents.DocumentError as exc:
        raise _refuse(str(exc)) from None


def load_spec(path: os.PathLike[str] | str) -> SweepSpec:
    """A :class:`SweepSpec` from a JSON (``.json``) or YAML file.

    An unreadable file, a syntax error, a top level that is not a mapping and every
    problem of the spec itself raise :class:`SpecError`, never a traceback's worth.
    """
    data = read_document(path)
    if not isinstance(data, dict):
        kind = "nothing" if data is None else f"a {type(data).__name__}"
        raise _refuse(
            f"{os.fspath(path)} must hold a mapping of fields (name, workload, search_space, "
            f"...), but it holds {kind}"
        )
    return parse_spec(data)
