"""Engines for regsweep's own tables, set up for many processes on one database.

SQLite: WAL journal and a busy timeout (as for Optuna's storage), foreign keys on, and
SQLAlchemy, not the ``sqlite3`` module, emits ``BEGIN``: the module's legacy mode starts no
transaction for a SELECT, which would make a read-then-write claim non-atomic. Writes begin
with ``BEGIN IMMEDIATE`` (:func:`write`), so a writer takes the database's write lock
before it reads, and waits for it under the busy timeout rather than failing with "database
is locked" half-way. PostgreSQL: a small pool per process, with pre-ping so a dropped
connection is replaced rather than handed out; a worker's one pool serves regsweep's tables
and Optuna's storage alike (:func:`create_engine_and_storage`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
import sqlalchemy as sa

from regcore.store._optuna import (
    SQLITE_BUSY_TIMEOUT_S,
    create_storage,
    normalize_url,
    sqlite_path,
)

_BEGIN_OPTION = "regsweep_sqlite_begin"


def create_engine_for(url: str, *, pool_size: int = 2) -> sa.Engine:
    """An engine for ``url`` (``sqlite:///FILE`` or ``postgresql://...``; ``postgres://``
    too)."""
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, but got {pool_size=}")
    url = normalize_url(url)
    backend = sa.make_url(url).get_backend_name()
    if backend != "sqlite":
        return sa.create_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
    path = sqlite_path(url)
    if path is None:
        raise ValueError(
            f"regsweep needs a SQLite file that every process can open, but got {url!r}; "
            "use sqlite:///path/to/regsweep.db"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def create_engine_and_storage(
    url: str,
    *,
    pool_size: int = 2,
    application_name: str | None = None,
    heartbeat_s: float | None = None,
    grace_s: float | None = None,
) -> tuple[sa.Engine, optuna.storages.RDBStorage]:
    """Regsweep's engine and Optuna's storage (:func:`create_storage`'s ``heartbeat_s`` and
    ``grace_s``) for a process that works on ``url`` from several threads: a worker.

    PostgreSQL: one engine, the storage's, for both, with a pool of ``pool_size``
    connections and none beyond (``max_overflow=0``): a thread that finds them all in use
    waits for one, so the process never holds more than ``pool_size`` of the server's
    ``max_connections``, whatever its threads do. Each is named ``application_name`` in
    ``pg_stat_activity``. The claim lock takes no connection of its own
    (:class:`regcore.store.StudyLock`). SQLite: two engines on the file, as connections to a
    file cost no server anything, and regsweep's engine begins its transactions itself
    (:func:`write`), which Optuna's sessions must not inherit.
    """
    if pool_size < 2:
        raise ValueError(
            "a claim holds the study's lock on one connection while Optuna's storage writes "
            f"on another, so pool_size must be at least 2, but got {pool_size=}"
        )
    url = normalize_url(url)
    storage = create_storage(
        url,
        pool_size=pool_size,
        max_overflow=0,
        application_name=application_name,
        heartbeat_s=heartbeat_s,
        grace_s=grace_s,
    )
    if sa.make_url(url).get_backend_name() == "sqlite":
        return create_engine_for(url, pool_size=pool_size), storage
    return storage.engine, storage


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (below), not sqlite3
    dbapi_connection.execute("PRAGMA foreign_keys=ON")


def _on_sqlite_begin(connection: sa.Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


@contextmanager
def write(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A transaction that will write: ``BEGIN IMMEDIATE`` on SQLite, plain on PostgreSQL."""
    with engine.connect() as connection:
        connection = connection.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        with connection.begin():
            yield connection


@contextmanager
def read(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A read-only transaction, so a page and its count see the same snapshot."""
    with engine.connect() as connection, connection.begin():
        yield connection


def is_postgresql(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"
