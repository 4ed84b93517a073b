"""Reading a JSON or YAML document (a sweep spec, a batch file) from disk.

Kept apart from :mod:`regcore.spec` so that ``regsweep submit`` can send a spec to the service,
which validates it, without loading PyTorch and the workloads here.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import yaml


class DocumentError(ValueError):
    """The file cannot be read as JSON or YAML; the message says why and where."""


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


def read_document(path: os.PathLike[str] | str) -> Any:
    """A JSON (``.json``) or YAML file's contents; :class:`DocumentError` when it cannot be
    read or parsed."""
    name = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise DocumentError(f"cannot read {name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DocumentError(f"{name} is not UTF-8 text; save it as UTF-8") from None
    if name.lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise DocumentError(f"{name} is not valid JSON ({where}): {exc.msg}") from None
    try:  # YAML reads JSON too, so any other suffix (or none) goes here
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no objects built
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise DocumentError(f"{name} is not valid YAML{where}: {reason}") from None
