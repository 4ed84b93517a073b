"""Reading a JSON or YAML document (a sweep spec, a batch file) from disk, and the bounds on
how large one may be.

Kept apart from :mod:`regcore.spec` so that ``regsweep submit`` can send a spec to the service,
which validates it, without loading PyTorch and the workloads here.

Bounds (:func:`check_size`): a few hundred bytes of YAML can stand for billions of values
(each alias is a copy of what it names, and aliases nest), and validation, messages and
copies walk every one. So a document is refused, before anything walks it, when it nests
deeper than :data:`MAX_DEPTH`, when one list or mapping has more than :data:`MAX_ITEMS`
entries, or when it holds more than :data:`MAX_VALUES` values in all, each alias counted as
often as it is used. The largest real document, a batch of 500 inline sweeps, is far inside.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import yaml

#: Far beyond any spec (about 5 levels), far below Python's recursion limit.
MAX_DEPTH = 32
#: Entries of one list or mapping: a batch lists at most 500 sweeps, a spec's lists a few.
MAX_ITEMS = 1_000
#: Values in a whole document, aliases expanded: 500 inline sweeps of ~100 values each fit.
MAX_VALUES = 100_000


class DocumentError(ValueError):
    """The file cannot be read as JSON or YAML; the message says why and where."""


class DocumentTooLargeError(DocumentError):
    """A document over one of the bounds; ``field`` is the dotted path at fault ("" for the
    whole document)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def check_size(data: Any) -> None:
    """Raise :class:`DocumentTooLargeError` when ``data`` (parsed JSON or YAML) is over a
    bound. Stops at the first value past one, so it costs at most ``MAX_VALUES`` steps
    however much the document would expand."""
    for count, (path, value) in enumerate(_walk(data), start=1):
        if len(path) > MAX_DEPTH:
            raise DocumentTooLargeError(
                f"nests deeper than {MAX_DEPTH} levels (no spec does; a YAML alias that "
                "contains itself does), at " + (_dotted(path[:MAX_DEPTH]) or "the top"),
                field="",
            )
        if count > MAX_VALUES:
            raise DocumentTooLargeError(
                f"holds more than {MAX_VALUES} values (YAML aliases counted as often as they "
                "are used); split it, or write repeated parts once",
                field="",
            )
        if isinstance(value, dict | list) and len(value) > MAX_ITEMS:
            kind = "entries" if isinstance(value, dict) else "items"
            raise DocumentTooLargeError(
                f"has {len(value)} {kind}, but one list or mapping may have at most "
                f"{MAX_ITEMS}; no spec needs more",
                field=_dotted(path),
            )


def _walk(data: Any) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every value of ``data`` with its path, depth first, without recursion (a hostile
    document may nest deep, or contain itself)."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if len(path) > MAX_DEPTH:
            continue  # the caller refuses it; its children would never end if it is a cycle
        # At most MAX_ITEMS + 1 children: the caller refuses a list or mapping of more.
        if isinstance(value, dict):
            items = list(itertools.islice(value.items(), MAX_ITEMS + 1))
            stack.extend(((*path, str(k)), v) for k, v in reversed(items))
        elif isinstance(value, list):
            stack.extend(
                ((*path, i), value[i]) for i in reversed(range(min(len(value), MAX_ITEMS + 1)))
            )


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in path)


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
    data = _parse(text, name)
    try:
        check_size(data)
    except DocumentTooLargeError as exc:
        at = f" {exc.field}" if exc.field else ""
        raise DocumentTooLargeError(f"{name}{at} {exc}", field=exc.field) from None
    return data


def _parse(text: str, name: str) -> Any:
    if name.lower().endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise DocumentError(f"{name} is not valid JSON ({where}): {exc.msg}") from None
        except RecursionError:
            raise DocumentError(f"{name} nests deeper than {MAX_DEPTH} levels") from None
    try:  # YAML reads JSON too, so any other suffix (or none) goes here
        # A SafeLoader subclass: no objects built. Aliases are resolved to shared objects
        # here (cheap); check_size then bounds what they expand to.
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise DocumentError(f"{name} is not valid YAML{where}: {reason}") from None
    except RecursionError:
        raise DocumentError(f"{name} nests deeper than {MAX_DEPTH} levels") from None
