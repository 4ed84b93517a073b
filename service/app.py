"""The app factory: plain keyword arguments in, a FastAPI app out.

Settings are read by the entry point (:mod:`regcore.service.main`), never here, so tests and
embedders build an app for any database and tokens without touching the environment. The
factory opens nothing: the database is reached on first use, and ``/readyz`` says whether
it can be.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from regcore.notify.courier import Courier
from regcore.notify.targets import WebhookTargets
from regcore.service.auth import ApiToken, TokenRegistry
from regcore.service.deps import Database
from regcore.service.errors import install_error_handlers
from regcore.service.limits import MIB, BodyLimitMiddleware
from regcore.service.metrics import LatencyMiddleware, ServiceMetrics
from regcore.service.routes import ROUTERS
from regcore.service.study_view import BestCache, DecisionCache, FailureCache
from regcore.spec import SweepSpec
from regcore.spec.batch import BatchSpec

DESCRIPTION = """\
Submit sweeps over L1/L2 regularization (λ₁, λ₂ and the implementation method), follow
them, and read what they found. Workers claim the trials; every result lands in the same
database, where optuna-dashboard shows each sweep's study live.

Every error has the body `{"detail": "...", "field": "... or null", "problems": [...]}`.
"""


def create_app(
    *,
    database_url: str,
    api_tokens: Mapping[str, str | ApiToken] | None = None,
    read_only_open: bool = False,
    max_body_bytes: int = MIB,
    pool_size: int = 4,
    webhook_allow: Sequence[str] = (),
    deliver_webhooks: bool = True,
    webhook_poll_s: float = 5.0,
) -> FastAPI:
    """The regsweep service for ``database_url`` (upgraded beforehand: ``upgrade_database``).

    ``api_tokens`` maps token names to plain tokens (role submit) or to ``ApiToken``
    objects with a role (kept only as SHA-256 digests); None turns auth off.
    ``read_only_open`` lets GET calls through without a token. Bodies over ``max_body_bytes``
    get 413. Webhook URLs are refused at submit, and not delivered, when
    their host is loopback, link-local or private, unless ``webhook_allow`` (host names,
    addresses, CIDR networks) lists it. With ``deliver_webhooks`` the app's lifespan runs a
    courier thread that delivers the outbox's due events (every ``webhook_poll_s``, and at
    once after a cancel), as every worker does.
    """
    database = Database(url=database_url, pool_size=pool_size)
    targets = WebhookTargets(webhook_allow)
    courier = Courier(
        database=lambda: (database.engine, database.storage),
        targets=targets,
        every_s=webhook_poll_s,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if deliver_webhooks:
            courier.start()
        try:
            yield
        finally:
            # A short drain: events left are delivered by the workers or the next start.
            await asyncio.to_thread(courier.close, drain_s=2.0)
            database.dispose()

    app = FastAPI(
        title="regsweep",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.database = database
    app.state.tokens = TokenRegistry(api_tokens, read_only_open=read_only_open)
    app.state.metrics = ServiceMetrics(database=database)
    app.state.best_cache = BestCache()
    app.state.failure_cache = FailureCache()
    app.state.decision_cache = DecisionCache()
    app.state.webhook_targets = targets
    app.state.courier = courier
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    # Added last = outermost: latency covers the 413s the body limit sends.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes)
    app.add_middleware(LatencyMiddleware, metrics=app.state.metrics)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, plus SweepSpec's and BatchSpec's (the create routes read their
    bodies themselves, to list every problem the way ``regsweep validate`` does)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (SweepSpec, BatchSpec):
            spec = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in {**spec.pop("$defs", {}), model.__name__: spec}.items():
                if components.get(name, definition) != definition:  # pragma: no cover
                    raise RuntimeError(f"OpenAPI component {name!r} defined twice; rename one")
                components[name] = definition
        app.openapi_schema = schema
    return app.openapi_schema
