"""``/healthz`` and ``/readyz``: what a process supervisor or load balancer probes.

Both are open (no token), as probes carry none, and say nothing about the data.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from pydantic import BaseModel

from regcore.service.deps import PROBE_TIMEOUT_S, DatabaseDep
from regcore.service.errors import ERROR_RESPONSES, ApiError, ErrorBody

_log = logging.getLogger(__name__)
# Probes need no token and touch no sweep: of the shared errors only the body limit's 400.
router = APIRouter(tags=["health"], responses={400: ERROR_RESPONSES[400]})


class Health(BaseModel):
    status: str


@router.get("/healthz")
def read_health() -> Health:
    """The process is up (it does not touch the database)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    responses={
        503: {"model": ErrorBody, "description": "the database cannot be reached or written"}
    },
)
def read_ready(database: DatabaseDep) -> Health:
    """The database takes a write (checked without writing anything); 503 otherwise."""
    try:
        database.ping()
    except Exception as exc:
        # The reason may hold the URL (and its password): the log only.
        _log.warning("readiness check failed: %s: %s", type(exc).__name__, exc)
        raise ApiError(
            503,
            "the database cannot be reached or refuses writes (read-only, or locked for over "
            f"{PROBE_TIMEOUT_S:g} s); check REGSWEEP_DATABASE_URL, the server and the service "
            "log",
        ) from None
    return Health(status="ready")
