"""Property-based requests from the OpenAPI schema (schemathesis): no input the schema
allows (positive) or breaks on purpose (negative) makes the service answer 5xx or stray
from its own documented responses (status codes, content types, bodies).

Hypothesis drives each operation directly (``APIOperation.as_strategy``) rather than
through ``schema.parametrize``/``from_fixture``: that pytest glue reads a pytest-internal
attribute that pytest 9 no longer has.
"""

from __future__ import annotations

from typing import Any

import pytest

from service import create_app
from tests.service.conftest import MakeApp, require

_WHY = "pip install -e '.[dev]' for the property-based API tests"
schemathesis = require("schemathesis", why=_WHY)
hypothesis = require("hypothesis", why=_WHY)

from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The operations, read from an app that is never asked anything but its schema (the app
# opens its database lazily, so this one never touches the URL).
_SCHEMA = create_app(database_url="sqlite:///never-opened.db").openapi()
OPERATIONS = [(method.upper(), path) for path, item in _SCHEMA["paths"].items() for method in item]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_breaks_the_api(make_app: MakeApp, method: str, path: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", make_app())
    operation = schema[path][method]
    cases = hypothesis.strategies.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @hypothesis.settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=cases)
    def check(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    check()
