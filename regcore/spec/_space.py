"""The search space: λ₁, λ₂, the implementation methods and, optionally, the learning rate."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, field_validator
from pydantic_core import InitErrorDetails

from regcore.regularizers import L1_METHODS, METHODS
from regcore.spec._base import SpecModel
from regcore.spec._params import ParamValue, raise_for_names
from regcore.spec._problems import problem, problems_error, suggest

_SHAPES = "a number, a range {low: 1.0e-6, high: 1.0e-2, log: true} or {choices: [0, 1.0e-4]}"


def _number(value: Any, *, positive: bool) -> float:
    """A finite number ≥ 0 (> 0 when ``positive``); YAML's "1e-4" strings are numbers too."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a number, but got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"must be a number, but got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"must be a finite number, but got {value!r}")
    if positive and number <= 0:
        raise ValueError(f"must be > 0, but got {value!r}")
    if number < 0:
        raise ValueError(
            f"must be ≥ 0 (a penalty coefficient cannot be negative), but got {value!r}"
        )
    return number


class Range(SpecModel):
    """A continuous range, sampled uniformly or (``log: true``) log-uniformly.

    ``l1: {low: 1.0e-6, high: 1.0e-2, log: true}``
    """

    low: float
    high: float
    log: bool = False

    @field_validator("low", "high", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> float:
        return _number(value, positive=False)

    def _problems(self) -> list[InitErrorDetails]:
        if self.low >= self.high:
            text = (
                f"low must be below high, but got low={self.low!r}, high={self.high!r}; swap "
                "them, or write a single number for a fixed value"
            )
            return [problem((), text, self.model_dump())]
        if self.log and self.low <= 0:
            text = (
                f"a log range cannot include 0, but got low={self.low!r}; set low to a small "
                "positive number such as 1.0e-8, or use {choices: [...]} to include 0"
            )
            return [problem(("low",), text, self.low)]
        return []


class Choices(SpecModel):
    """A list of values to choose from (0 allowed): ``l1: {choices: [0, 1.0e-5, 1.0e-4]}``."""

    choices: list[float] = Field(min_length=1)

    @field_validator("choices", mode="before")
    @classmethod
    def _values(cls, values: Any) -> Any:
        if not isinstance(values, list):
            return values  # pydantic reports the type
        details, seen = [], set()
        for i, value in enumerate(values):
            try:
                number = _number(value, positive=False)
            except ValueError as exc:
                details.append(problem((i,), str(exc), value))
                continue
            if number in seen:
                details.append(problem((i,), f"{value!r} is listed twice; list it once", value))
            seen.add(number)
        if details:
            raise problems_error(details, cls.__name__)
        return [float(v) for v in values]


def _dispatch(*, positive: bool, optional: bool) -> Callable[[Any], Any]:
    def validate(value: Any) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, dict):
            result: Range | Choices = (
                Choices.model_validate(value) if "choices" in value else Range.model_validate(value)
            )
            values = result.choices if isinstance(result, Choices) else [result.low, result.high]
            if positive and min(values) <= 0:
                raise ValueError(f"every learning rate must be > 0, but got {min(values)!r}")
            return result
        if isinstance(value, list):
            raise ValueError(f"for a list of values write {{choices: {value!r}}}")
        if optional:
            raise ValueError(
                f"must be a range {{low: 1.0e-4, high: 1.0e-1, log: true}} or {{choices: [...]}}, "
                f"but got {value!r}; a fixed learning rate goes in optimizer.lr"
            )
        try:
            return _number(value, positive=False)
        except ValueError as exc:
            raise ValueError(f"{exc}; write {_SHAPES}") from None

    return validate


Lambda = Annotated[
    float | Range | Choices, BeforeValidator(_dispatch(positive=False, optional=False))
]
LearningRate = Annotated[
    Range | Choices | None, BeforeValidator(_dispatch(positive=True, optional=True))
]


def _methods(value: Any) -> Any:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise ValueError(f"give one method or a non-empty list of them, from {', '.join(METHODS)}")
    details = []
    for i, name in enumerate(names):
        loc = () if isinstance(value, str) else (i,)
        if name not in METHODS:
            hint = suggest(name, METHODS) if isinstance(name, str) else ""
            text = f"unknown method {name!r}{hint} (choose from {', '.join(METHODS)})"
            details.append(problem(loc, text, name))
        elif name in names[:i]:
            details.append(problem(loc, f"{name!r} is listed twice; list each method once", name))
    if details:
        raise problems_error(details, "method")
    return value


_METHOD_SCHEMA = {"type": "string", "enum": list(METHODS)}
Method = Annotated[
    str | list[str],
    BeforeValidator(_methods),
    WithJsonSchema({"anyOf": [_METHOD_SCHEMA, {"type": "array", "items": _METHOD_SCHEMA}]}),
]


def can_be_zero(value: float | Range | Choices) -> bool:
    """Whether ``value`` allows λ = 0 (what a method that cannot express it records)."""
    if isinstance(value, Range):
        return value.low == 0
    if isinstance(value, Choices):
        return 0 in value.choices
    return value == 0


class SearchSpace(SpecModel):
    """What a sweep varies: ``l1`` and ``l2`` (each a number, a range or choices), ``method``
    (one name or a list; all six by default), optionally ``lr`` (a range or choices) and
    ``params``, the workload's own hyperparameters (``{dropout: {low: 0.0, high: 0.5}}``).

    Trials sample the methods' classes (``method_class``: penalty, decoupled, proximal), each
    running the cheapest of its listed methods; list one method of a class to pin it.
    ``weight_decay`` cannot express λ₁: its trials do not sample ``l1`` and record it as 0,
    so the space is conditional. A spec that leaves λ₁ no way to be 0 while only such
    methods can run is refused.

    .. code-block:: yaml

        search_space:
          l1: {choices: [0, 1.0e-5, 1.0e-4]}
          l2: {low: 1.0e-6, high: 1.0e-2, log: true}
          method: [weight_decay, proximal]
    """

    l1: Lambda
    l2: Lambda
    method: Method = Field(default_factory=lambda: list(METHODS))
    lr: LearningRate = None
    # The workload's own hyperparameters, searched too (regcore.spec._params).
    params: Annotated[dict[str, ParamValue], AfterValidator(raise_for_names)] = Field(
        default_factory=dict
    )

    @property
    def methods(self) -> tuple[str, ...]:
        return (self.method,) if isinstance(self.method, str) else tuple(self.method)

    @staticmethod
    def samples_l1(method: str) -> bool:
        """Whether trials of ``method`` sample λ₁ (else it is recorded as 0)."""
        return method in L1_METHODS

    def _problems(self) -> list[InitErrorDetails]:
        if any(self.samples_l1(m) for m in self.methods) or can_be_zero(self.l1):
            return []
        text = (
            f"{', '.join(self.methods)} cannot apply λ₁, so this l1 would never be used; set "
            f"l1: 0, or add a method that applies λ₁ ({', '.join(L1_METHODS)}) to "
            "search_space.method"
        )
        return [problem(("l1",), text)]
