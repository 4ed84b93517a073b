"""Property-based requests from the OpenAPI schema (schemathesis), every check it has: no
input the schema allows (positive) or breaks on purpose (negative) makes the service answer
5xx, stray from its documented responses (status codes, content types, bodies, headers),
accept what the schema forbids, refuse what it allows, or let a call through without a token.

Hypothesis drives each operation directly (``APIOperation.as_strategy``) rather than
through ``schema.parametrize``/``from_fixture``: that pytest glue reads a pytest-internal
attribute that pytest 9 no longer has.

The one allowance: a create route may answer a schema-valid body with 422. A spec's rules
between fields (``low`` below ``high``, the workload's own parameters, a sampler's options
against its constructor, a matrix of at most 500 sweeps) are beyond JSON Schema, so a valid
shape is not yet a valid sweep; every other answer to positive data must be as documented.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from regcore.service import create_app
from regcore.service.auth import ApiToken
from regcore.spec import parse_spec
from regcore.spec.batch import parse_batch
from regcore.store import SweepNotFoundError, get_sweep, insert_batch
from regcore.sweeps import studies
from tests.service.conftest import MakeApp, make_spec, require

_WHY = "pip install -e '.[dev]' for the property-based API tests"
schemathesis = require("schemathesis", why=_WHY)
hypothesis = require("hypothesis", why=_WHY)

from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

load_all_checks()
ALL_CHECKS = CHECKS.get_all()
EXAMPLES = 50  # fuzzed cases per operation and engine
COVERAGE = 10_000  # coverage cases per operation and engine
TOKEN = "schemathesis-t0k3n"
CONFIG = SchemathesisConfig.from_dict(
    {
        "auth": {"openapi": {"HTTPBearer": {"bearer": TOKEN}}},
        "operations": [
            {
                "include-method": "POST",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "401", "403", "404", "409", "422"]
                    }
                },
            }
        ],
    }
)
# The operations, read from an app that is never asked anything but its schema (the app
# opens its database lazily, so this one never touches the URL).
_SCHEMA = create_app(database_url="sqlite:///never-opened.db").openapi()
OPERATIONS = [(method.upper(), path) for path, item in _SCHEMA["paths"].items() for method in item]


def test_every_check_schemathesis_has_is_run() -> None:
    names = {check.__name__ for check in ALL_CHECKS}
    assert {"positive_data_acceptance", "negative_data_rejection", "ignored_auth"} <= names
    assert len(names) >= 14


class Known:
    """A sweep with finished trials and a batch, made again whenever a case deletes them, so
    that the routes of one sweep or batch answer with data rather than only 404."""

    def __init__(self, app: FastAPI) -> None:
        self.engine, self.storage = app.state.database.engine, app.state.database.storage
        self.made = 0
        self.sweep_id = self.batch = ""

    def ids(self) -> dict[str, str]:
        if not self.sweep_id or not _exists(self.engine, self.sweep_id):
            self.sweep_id = self._sweep()
        if not self.batch:
            self.batch = self._batch()
        return {"sweep_id": self.sweep_id, "name": self.batch}

    def _sweep(self) -> str:
        self.made += 1
        spec = parse_spec(make_spec(f"known-{self.made}"))
        row = studies.create_sweep(self.engine, self.storage, spec, owner="schemathesis")
        study = optuna.load_study(study_name=row.study_name, storage=self.storage)
        for number in range(3):  # what a worker leaves: values, params, attributes
            trial = study.ask({"l2": optuna.distributions.FloatDistribution(1e-6, 1e-2, log=True)})
            trial.set_user_attr("method", "weight_decay")
            study.tell(trial, 1.0 / (number + 1))
        return row.id

    def _batch(self) -> str:
        batch = parse_batch(
            {"name": "known", "template": make_spec("t"), "matrix": {"training.seed": [0, 1]}}
        )
        specs = batch.expand()
        _row, sweeps = insert_batch(
            self.engine,
            name=batch.name,
            spec_json=batch.model_dump(mode="json"),
            sweeps_json=[s.to_json_dict() for s in specs],
            owner="schemathesis",
        )
        for spec, sweep in zip(specs, sweeps, strict=True):
            studies.open_study(spec, self.storage, user_attrs={"sweep_id": sweep.id})
        return batch.name


def _exists(engine: sa.Engine, sweep_id: str) -> bool:
    try:
        get_sweep(engine, sweep_id)
    except SweepNotFoundError:
        return False
    return True


@pytest.fixture
def app(make_app: MakeApp) -> FastAPI:
    return make_app(
        api_tokens={"schemathesis": ApiToken(secret=TOKEN, role="admin")}, deliver_webhooks=False
    )


def _check(case: Any, known: Known, *, name_what_exists: bool) -> None:
    # A valid case may name a sweep or batch that exists (a negative one keeps its own
    # path, which may be what it breaks).
    if name_what_exists and case.path_parameters and case.meta.generation.mode.is_positive:
        ids = known.ids()
        case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
    case.call_and_validate(checks=ALL_CHECKS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_the_edges_of_the_schema(app: FastAPI, method: str, path: str) -> None:
    """Schemathesis' coverage phase: each enum value and bound, each required part missing,
    each wrong type, valid and not, at most COVERAGE of them (spread over all)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    operation = schema[path][method]
    config = schema.config.generation_for(operation=operation)
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    cases = list(
        schema.iter_coverage_cases(operation, generation_modes=modes, generation_config=config)
    )
    known = Known(app)
    step = max(1, -(-len(cases) // COVERAGE))  # ceil: every case up to COVERAGE, else spread
    for case in cases[::step]:
        # The coverage phase leaves the bearer empty (the fuzzing phase's strategies fill it
        # in): the token, unless the header is what the case breaks.
        if case.meta.phase.data.parameter != "Authorization":
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
        _check(case, known, name_what_exists=False)
        if case.path_parameters and case.meta.generation.mode.is_positive:
            _check(case, known, name_what_exists=True)  # and again on what exists


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_breaks_the_api(app: FastAPI, method: str, path: str) -> None:
    """Schemathesis' fuzzing phase: cases drawn from the schema, valid and not."""
    known = Known(app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    operation = schema[path][method]
    # Both modes in one strategy: an operation with nothing to break has no negative cases.
    cases = hypothesis.strategies.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,  # the same cases on every run: CI is reproducible
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    # Three valid cases in four name what exists.
    @hypothesis.given(case=cases, name_what_exists=hypothesis.strategies.integers(0, 3).map(bool))
    def check(case: Any, name_what_exists: bool) -> None:
        _check(case, known, name_what_exists=name_what_exists)

    check()
