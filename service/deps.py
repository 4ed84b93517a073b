"""The service's one database, opened on first use, and the route dependencies onto it.

Opening is lazy so that the app builds, and answers ``/healthz`` and ``/readyz`` (503), while
the database is down; a failed open is retried by the next request, so the service recovers
by itself when the database comes back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Annotated, TypeVar

import optuna
import sqlalchemy as sa
from fastapi import Depends, Request

from regcore.service.errors import ApiError
from regcore.store import (
    SweepNotFoundError,
    SweepRow,
    create_engine_for,
    create_storage,
    get_sweep,
    get_sweep_by_name,
)

_log = logging.getLogger(__name__)
T = TypeVar("T")
#: How long /readyz waits for the database to take its write.
PROBE_TIMEOUT_S = 2.0
_NO_ROW_WRITE = sa.text("UPDATE sweeps SET priority = priority WHERE 1 = 0")
# Ids are what regcore.store makes (hex); anything else cannot exist, so it is never queried
# (PostgreSQL would refuse some strings, a NUL byte say, with an error instead of no rows).
_ID_CHARS = frozenset("0123456789abcdefABCDEF")


class Database:
    """Regsweep's engine and Optuna's storage for one URL, shared by every request."""

    def __init__(self, *, url: str, pool_size: int = 4) -> None:
        self.url = url
        self.pool_size = pool_size
        self._engine: sa.Engine | None = None
        self._storage: optuna.storages.RDBStorage | None = None
        self._lock = threading.Lock()

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    pool = self.pool_size
                    self._engine = self._open(lambda: create_engine_for(self.url, pool_size=pool))
        return self._engine

    @property
    def storage(self) -> optuna.storages.RDBStorage:
        if self._storage is None:
            with self._lock:
                if self._storage is None:
                    pool = self.pool_size
                    self._storage = self._open(lambda: create_storage(self.url, pool_size=pool))
        return self._storage

    def _open(self, opener: Callable[[], T]) -> T:
        try:
            return opener()
        except Exception as exc:
            # The message may hold the URL and its password: the log only, never the client.
            _log.warning("cannot open the database: %s", exc)
            raise ApiError(
                503,
                "the database is unavailable; retry shortly (GET /readyz says when it is back)",
            ) from exc

    def ping(self, *, timeout_s: float = PROBE_TIMEOUT_S) -> None:
        """Raise unless the database takes a write within ``timeout_s``.

        A database that answers reads may refuse writes: a read-only file or replica, a
        standby after failover, a user without the grant, a write lock held by a stuck
        process. So the probe runs an UPDATE of the queue that matches no row, in a
        transaction rolled back: the database checks it may write and takes the write lock,
        and nothing is written or grows.
        """
        ms = round(timeout_s * 1000)
        with self.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            busy_ms = None
            try:
                with connection.begin() as transaction:
                    if sqlite:  # the pool's connections wait a minute for a lock; not a probe
                        busy_ms = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
                        connection.exec_driver_sql(f"PRAGMA busy_timeout = {ms}")
                    else:
                        connection.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
                        connection.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
                    connection.execute(_NO_ROW_WRITE)
                    transaction.rollback()
            finally:
                if busy_ms is not None:  # the connection goes back to the pool as it came
                    connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(busy_ms)}")
                    connection.rollback()

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            if self._storage is not None:
                self._storage.engine.dispose()
            self._engine = self._storage = None


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_engine(request: Request) -> sa.Engine:
    return get_database(request).engine


def get_storage(request: Request) -> optuna.storages.RDBStorage:
    return get_database(request).storage


DatabaseDep = Annotated[Database, Depends(get_database)]
EngineDep = Annotated[sa.Engine, Depends(get_engine)]
StorageDep = Annotated[optuna.storages.RDBStorage, Depends(get_storage)]


def get_sweep_or_404(sweep_id: str, engine: EngineDep) -> SweepRow:
    """The sweep of the path's ``sweep_id``; 404 when there is none."""
    if not sweep_id or len(sweep_id) > 32 or not set(sweep_id) <= _ID_CHARS:
        raise _not_found(sweep_id)
    try:
        return get_sweep(engine, sweep_id)
    except SweepNotFoundError:
        raise _not_found(sweep_id) from None


def _not_found(sweep_id: str) -> ApiError:
    shown = sweep_id if len(sweep_id) <= 40 else sweep_id[:37] + "..."
    return ApiError(404, f"no sweep has id {shown!r}; GET /v1/sweeps lists them", field="sweep_id")


SweepDep = Annotated[SweepRow, Depends(get_sweep_or_404)]


_RENAME = "give it another name, or delete the old one first"


def refuse_taken_name(name: str, engine: sa.Engine, storage: optuna.storages.BaseStorage) -> None:
    """409 when a sweep, or a study made outside the service (``regsweep run``), has the name:
    a new sweep would otherwise resume that study's trials. A study that a submission killed
    half-way left does not count: submitting again makes it anew."""
    from regcore.sweeps.half_made import study_takes_name

    with contextlib.suppress(SweepNotFoundError):
        get_sweep_by_name(engine, name)
        raise ApiError(409, f"a sweep named {name!r} exists; {_RENAME}", field="name")
    if study_takes_name(storage, name):
        raise ApiError(409, f"an Optuna study named {name!r} exists; {_RENAME}", field="name")
