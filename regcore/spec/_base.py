"""The base of every part of a spec: immutable, unknown keys refused by name, and every
problem of a mapping reported together."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic_core import InitErrorDetails

from regcore.spec._problems import as_details, problem, problems_error, unknown_field


class SpecModel(BaseModel):
    """A mapping in a spec. An unknown key is reported as "unknown field 'epoch'; did you
    mean 'epochs'?" together with every other problem of the same mapping.

    Subclasses check their fields against each other in :meth:`_problems` (run once every
    field is valid) rather than in pydantic "after" validators, which would not run when a
    key is unknown.
    """

    # Strict: a whole number is no string ("3") and no boolean (true), as the JSON schema
    # says; fields whose JSON form is text or a list (a deadline, betas) are lax on their own.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # Keys that people put in the wrong place, and where they belong.
    misplaced: ClassVar[dict[str, str]] = {}

    @classmethod
    def unknown_key_message(cls, key: str) -> str:
        if key in cls.misplaced:
            return f"unknown field {key!r}; {cls.misplaced[key]}"
        return unknown_field(key, cls.model_fields)

    def _problems(self) -> list[InitErrorDetails]:
        """Problems between this mapping's (valid) fields."""
        return []

    @classmethod
    def _problems_of_invalid(cls, data: dict[str, Any]) -> list[InitErrorDetails]:
        """Problems between the fields that are valid, when some are not."""
        return []

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Defaults that depend on other fields."""
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _validate_all(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        data = cls._prepare(data)
        unknown = [k for k in data if k not in cls.model_fields]
        details = [problem((str(k),), cls.unknown_key_message(str(k)), data[k]) for k in unknown]
        known = {k: v for k, v in data.items() if k not in unknown}
        try:
            result = handler(known)
        except ValidationError as exc:
            details.extend(as_details(exc))
            details.extend(cls._problems_of_invalid(known))
        else:
            details.extend(result._problems())
        if details:
            raise problems_error(details, cls.__name__)
        return result
