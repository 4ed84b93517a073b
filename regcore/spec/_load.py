"""Reading a spec from data, a JSON file or a YAML file; every failure is a SpecError."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from regcore.spec._problems import SpecError, SpecProblem, problems_from
from regcore.spec._sweep import SweepSpec


class _Loader(yaml.SafeLoader):
    """YAML as people write it: ``1e-4`` is a number (YAML 1.1 wants ``1.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)
        |[-+]?(?:[0-9][0-9_]*)\.[0-9_]*
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.VERBOSE,
    ),
    list("-+0123456789."),
)


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
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise _refuse(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise _refuse(f"{os.fspath(path)} is not UTF-8 text; save it as UTF-8") from None
    if os.fspath(path).lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise _refuse(f"{os.fspath(path)} is not valid JSON ({where}): {exc.msg}") from None
    try:  # YAML reads JSON too, so any other suffix (or none) goes here
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no objects built
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise _refuse(f"{os.fspath(path)} is not valid YAML{where}: {reason}") from None


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
