"""``search_space.params``: a workload's own hyperparameters, searched beside λ₁, λ₂, the method
and the learning rate.

.. code-block:: yaml

    search_space:
      params:
        dropout: {low: 0.0, high: 0.5}
        width: {choices: [64, 128]}
        depth: {low: 1, high: 4, int: true}
        activation: {choices: [relu, gelu]}

A value is a fixed value, a range (``log: true`` for log-uniform, ``int: true`` for whole
numbers) or choices (numbers, strings or booleans, kept as written: 64 stays an int). Each
trial's values are merged over ``workload.params`` and checked by the workload's ``Params``
model where it has one (:func:`check_params`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from regcore.spec._base import SpecModel
from regcore.spec._problems import problem, problems_error

Scalar = bool | int | float | str
# Searched beside the workload's own parameters under these names: refused as parameters.
RESERVED = ("l1", "l2", "lr", "method", "method_class")


class ParamRange(SpecModel):
    """``{low: 0.0, high: 0.5}``; ``log: true`` samples log-uniformly, ``int: true`` whole
    numbers (``{low: 1, high: 4, int: true}``)."""

    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)
    log: bool = False
    int: bool = False

    def _problems(self) -> list[InitErrorDetails]:
        if self.low >= self.high:
            text = f"low must be below high, but got low={self.low!r}, high={self.high!r}"
            return [problem((), text, self.model_dump())]
        if self.log and self.low <= 0:
            text = f"a log range needs low > 0, but got low={self.low!r}"
            return [problem(("low",), text, self.low)]
        if self.int and not (self.low.is_integer() and self.high.is_integer()):
            text = f"an int range needs whole bounds, but got {self.low!r}..{self.high!r}"
            return [problem((), text, self.model_dump())]
        return []

    def examples(self) -> list[Scalar]:
        """Values a trial may get: the bounds, and a point between (the kind it samples)."""
        if self.int:
            return [int(self.low), int(self.high)]
        # A point between that is no whole number, so an int parameter's range shows itself.
        inside = math.exp(0.37 * math.log(self.high / self.low)) * self.low if self.log else None
        return [self.low, self.high, inside or self.low + 0.37 * (self.high - self.low)]


class ParamChoices(SpecModel):
    """``{choices: [64, 128]}`` or ``{choices: [relu, gelu]}``: each value kept as written."""

    choices: list[Scalar] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> ParamChoices:
        seen: list[Scalar] = []
        for value in self.choices:
            if any(type(value) is type(s) and value == s for s in seen):
                raise ValueError(f"{value!r} is listed twice; list it once")
            seen.append(value)
        return self


def _dispatch(value: Any) -> Any:
    if isinstance(value, dict):
        if "choices" in value:
            return ParamChoices.model_validate(value)
        return ParamRange.model_validate(value)
    if isinstance(value, list):
        raise ValueError(f"for a list of values write {{choices: {value!r}}}")
    return value


ParamValue = Annotated[ParamChoices | ParamRange | Scalar, BeforeValidator(_dispatch)]


def check_names(params: Mapping[str, Any]) -> list[InitErrorDetails]:
    details = []
    for name in params:
        if name in RESERVED:
            text = f"{name} is searched as search_space.{name}, not as a workload parameter"
            details.append(problem((name,), text, name))
        elif not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
            text = f"name a parameter like a Python identifier (e.g. dropout), but got {name!r}"
            details.append(problem((name,), text, name))
    return details


def examples(value: ParamChoices | ParamRange | Scalar) -> list[Scalar]:
    if isinstance(value, ParamRange):
        return value.examples()
    if isinstance(value, ParamChoices):
        return list(value.choices)
    return [value]


def check_params(
    model: type[BaseModel], fixed: Mapping[str, Any], searched: Mapping[str, Any]
) -> list[InitErrorDetails]:
    """Problems of ``searched`` against the workload's ``model``, each at
    ``search_space.params.NAME``: every value a trial may get, merged over ``fixed``
    (``workload.params``), must be valid."""
    details = []
    open_model = model.model_config.get("extra") == "allow"
    for name, value in searched.items():
        if name not in model.model_fields and not open_model:
            # Also where the model ignores unknown keys: the function would never see it.
            known = ", ".join(model.model_fields) or "none"
            text = f"the workload has no parameter {name!r} (its parameters: {known})"
            details.append(problem(("search_space", "params", name), text, name))
            continue
        for example in examples(value):
            try:
                model.model_validate({**fixed, name: example})
            except ValidationError as exc:
                loc = ("search_space", "params", name)
                error = next((e for e in exc.errors() if e["loc"][:1] == (name,)), None)
                if error is None:
                    # A rule between parameters (n_informative ≤ n_features): this value
                    # breaks it unless the fixed parameters do on their own (refused there).
                    if not _valid(model, fixed):
                        continue
                    error = exc.errors()[0]
                    message = str(error["msg"]).removeprefix("Value error, ")
                    text = f"{message}; a trial may get {name}={example!r}"
                elif error["type"] == "extra_forbidden":
                    known = ", ".join(model.model_fields) or "none"
                    text = f"the workload has no parameter {name!r} (its parameters: {known})"
                else:
                    text = f"{error['msg']} (the workload's {name!r}); a trial may get {example!r}"
                if error["type"] in {"int_from_float", "int_parsing"}:
                    text += "; for whole numbers write {low: ..., high: ..., int: true}"
                details.append(problem(loc, text, example))
                break
    return details


def _valid(model: type[BaseModel], params: Mapping[str, Any]) -> bool:
    try:
        model.model_validate(dict(params))
    except ValidationError:
        return False
    return True


def raise_for_names(params: Mapping[str, Any]) -> Mapping[str, Any]:
    details = check_names(params)
    if details:
        raise problems_error(details, "params")
    return params


def grid_params(sampler: str, params: Mapping[str, Any]) -> list[InitErrorDetails]:
    """A sampler that walks listed values cannot search a range of a parameter."""
    from regcore.spec._algorithms import SAMPLERS

    if not SAMPLERS[sampler].listed_values:
        return []
    return [
        problem(
            ("search_space", "params", name),
            f"the {sampler} sampler needs listed values, but {name} is a range; write "
            f"{{choices: [...]}}, or use another sampler (tpe, random)",
            value.model_dump(),
        )
        for name, value in params.items()
        if isinstance(value, ParamRange)
    ]
