"""A batch: many sweeps submitted as one, with one deadline — what runs overnight.

A batch file lists sweep specs, or gives one spec ``template`` and a ``matrix`` of dotted
paths into it, each with a list of values; every combination becomes a sweep::

    name: nightly
    deadline: "07:00"            # the next 07:00 local time, or ISO 8601 (with an offset)
    notify: {webhook_url: https://hooks.example.com/regsweep}
    template:
      name: digits
      workload: {name: digits_mlp}
      search_space: {l1: {low: 1.0e-6, high: 1.0e-2, log: true}, l2: 0, method: proximal}
      budget: {n_trials: 20}
    matrix:
      workload.name: [digits_mlp, digits_cnn]
      training.seed: [0, 1]

Sweeps are named ``<batch>-<template>-<values>`` (``nightly-digits-digits_cnn-1``), and each
one's ``budget.deadline`` is the batch's unless its own is earlier.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from regcore.spec import NotifySpec, SpecError, SpecProblem, SweepSpec, parse_spec
from regcore.spec._base import SpecModel
from regcore.spec._load import read_document

MAX_SWEEPS = 500
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


def resolve_deadline(
    text: str | datetime | None, *, now: datetime | None = None
) -> datetime | None:
    """A deadline as an aware UTC datetime: ``"07:00"`` is the next 07:00 local time, an ISO
    8601 stamp without an offset is local time too."""
    if text is None:
        return None
    now = (now or datetime.now(UTC)).astimezone()  # local time, aware
    if isinstance(text, datetime):
        stamp = text
    elif match := _CLOCK.match(text.strip()):
        hour, minute = int(match[1]), int(match[2])
        if hour > 23 or minute > 59:
            raise ValueError(f"a clock time is HH:MM from 00:00 to 23:59, but got {text!r}")
        stamp = datetime.combine(now.date(), time(hour, minute), tzinfo=now.tzinfo)
        if stamp <= now:
            stamp += timedelta(days=1)
    else:
        try:
            stamp = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"give the deadline as HH:MM (local time) or ISO 8601, but got {text!r}"
            ) from None
    if stamp.utcoffset() is None:
        stamp = stamp.astimezone()  # naive = local
    return stamp.astimezone(UTC)


def _one_source(schema: dict[str, Any]) -> None:
    """What the validators say, in the JSON schema: ``sweeps`` (1 to MAX_SWEEPS) or
    ``template`` (and then maybe a ``matrix`` of non-empty lists), not both, not neither."""
    properties = schema["properties"]
    properties["sweeps"]["anyOf"][0].update(minItems=1, maxItems=MAX_SWEEPS)
    properties["matrix"]["anyOf"][0]["additionalProperties"]["minItems"] = 1
    schema["oneOf"] = [
        {
            "required": ["sweeps"],
            "properties": {
                "sweeps": {"type": "array"},
                "template": {"type": "null"},
                "matrix": {"type": "null"},
            },
        },
        {
            "required": ["template"],
            "properties": {"template": {"type": "object"}, "sweeps": {"type": "null"}},
        },
    ]


class BatchSpec(SpecModel):
    """Many sweeps under one name and deadline: ``sweeps`` (a list of specs), or
    ``template`` with a ``matrix``."""

    model_config = ConfigDict(json_schema_extra=_one_source)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    deadline: datetime | None = None
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    notify: NotifySpec = Field(default_factory=NotifySpec)
    sweeps: list[dict[str, Any]] | None = None
    template: dict[str, Any] | None = None
    matrix: dict[str, list[Any]] | None = None

    @field_validator("deadline", mode="before")
    @classmethod
    def _deadline(cls, value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime | str):
            return resolve_deadline(value)
        raise ValueError(f"give the deadline as HH:MM or ISO 8601, but got {value!r}")

    @model_validator(mode="after")
    def _one_source(self) -> BatchSpec:
        if (self.sweeps is None) == (self.template is None):
            raise ValueError("give either sweeps (a list of specs) or template with a matrix")
        if self.matrix is not None and self.template is None:
            raise ValueError("matrix needs a template to fill in")
        for path, values in (self.matrix or {}).items():
            if not values:
                raise ValueError(f"matrix.{path} is empty; give it at least one value")
        # Counted, never expanded, here: a matrix of a few hundred bytes can stand for
        # millions of sweeps.
        if self.sweeps is not None and not self.sweeps:
            raise ValueError("sweeps is empty; list at least one sweep spec")
        if self.sweeps is not None and len(self.sweeps) > MAX_SWEEPS:
            raise ValueError(
                f"a batch has at most {MAX_SWEEPS} sweeps, but got {len(self.sweeps)}; "
                "split it into several batches"
            )
        sizes = [len(values) for values in (self.matrix or {}).values()]
        if (count := math.prod(sizes)) > MAX_SWEEPS:
            shown = " × ".join(map(str, sizes[:8])) + (" × …" if len(sizes) > 8 else "")
            total = f"{count}" if count < 10**9 else f"about 10^{len(str(count)) - 1}"
            raise ValueError(
                f"the matrix makes {shown} = {total} sweeps, but a batch has at most "
                f"{MAX_SWEEPS}; list fewer values, or split it into several batches"
            )
        return self

    def expand(self) -> list[SweepSpec]:
        """Every sweep of the batch, validated; SpecError lists every problem of every one."""
        documents = self.sweeps if self.sweeps is not None else self._combinations()
        if len(documents) > MAX_SWEEPS:
            raise SpecError(
                [SpecProblem(field="sweeps", message=f"at most {MAX_SWEEPS} sweeps per batch")]
            )
        specs, problems = [], []
        for index, document in enumerate(documents):
            data = copy.deepcopy(document)
            data["name"] = f"{self.name}-{data.get('name', index)}"
            if self.priority is not None:
                data.setdefault("priority", self.priority)
            budget = data.setdefault("budget", {})
            own = budget.get("deadline") if isinstance(budget, dict) else None
            if self.deadline is not None and isinstance(budget, dict):
                budget["deadline"] = _earliest(self.deadline, own)
            try:
                specs.append(parse_spec(data))
            except SpecError as exc:
                where = "sweeps" if self.sweeps is not None else "template"
                prefix = f"{where}.{index}" if self.sweeps is not None else where
                label = data["name"]
                problems += [
                    SpecProblem(
                        field=f"{prefix}.{p.field}".rstrip("."), message=f"{label}: {p.message}"
                    )
                    for p in exc.problems
                ]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            problems.append(
                SpecProblem(field="sweeps", message="two sweeps get the same name; name them apart")
            )
        if problems:
            raise SpecError(problems)
        return specs

    def _combinations(self) -> list[dict[str, Any]]:
        assert self.template is not None
        matrix = self.matrix or {}
        documents = []
        for values in itertools.product(*matrix.values()):
            data = copy.deepcopy(self.template)
            for path, value in zip(matrix, values, strict=True):
                _set(data, path, copy.deepcopy(value))
            labels = [_label(v) for v in values]
            data["name"] = "-".join([str(self.template.get("name", "sweep")), *labels])
            documents.append(data)
        return documents


def parse_batch(data: Any) -> BatchSpec:
    """A batch document (parsed JSON or YAML) as a BatchSpec; SpecError on any problem."""
    if not isinstance(data, dict):
        raise SpecError(
            [SpecProblem(field="", message="a batch is a mapping with name and sweeps or template")]
        )
    try:
        return BatchSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(
            [
                SpecProblem(field=_dotted(e["loc"]), message=e["msg"].removeprefix("Value error, "))
                for e in exc.errors()
            ]
        ) from None


def load_batch(path: os.PathLike[str] | str) -> BatchSpec:
    """A batch from a JSON or YAML file (``regsweep batch submit nightly.yaml``)."""
    return parse_batch(read_document(path))


def _dotted(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _earliest(batch: datetime, own: Any) -> str:
    if own is not None:
        try:
            mine = resolve_deadline(own)
        except ValueError:
            return str(own)  # the sweep's own check reports it
        if mine is not None and mine < batch:
            return mine.isoformat()
    return batch.isoformat()


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for key in keys[:-1]:
        data = data.setdefault(key, {})
        if not isinstance(data, dict):
            raise SpecError(
                [
                    SpecProblem(
                        field=f"matrix.{path}", message=f"{key} is not a mapping in the template"
                    )
                ]
            )
    data[keys[-1]] = value


def _label(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("name", "x")
    if isinstance(value, list):
        return ".".join(_label(v) for v in value)
    return re.sub(r"[^A-Za-z0-9_.]", "", str(value)) or "x"
