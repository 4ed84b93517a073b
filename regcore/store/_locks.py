"""A lock that every process working on the same study sees, for exact budgets.

SQLite: an advisory file lock beside the database file (all users of a SQLite file are on one
machine). PostgreSQL: a session-level advisory lock keyed by the study name, so workers on
any machine serialize their claims.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from regcore.store._engine import normalize_url
from regcore.store._optuna import sqlite_path

_memory_locks: dict[str, threading.Lock] = {}


@contextmanager
def file_lock(path: str) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if missing) for the block."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _key(study_name: str) -> int:
    return int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)


def _unlock(connection: sa.Connection, key: int) -> None:
    """Release a session-level advisory lock. A connection that has dropped released it with
    the session: what was done under it (a trial asked for) stands, so that is no error."""
    try:
        connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
    except (sa.exc.OperationalError, sa.exc.InterfaceError):
        connection.invalidate()


class StudyLock:
    """``with lock.hold(): ...`` holds the study's claim lock."""

    def __init__(self, url: str, study_name: str) -> None:
        self.url = url
        self.study_name = study_name
        self._path = sqlite_path(url)
        self._engine: sa.Engine | None = None
        if self._path is None and not url.startswith("sqlite"):
            # A connection per hold, closed after it: a worker keeps no idle connection for
            # each sweep it ever claimed (a batch of 20 sweeps would otherwise hold 20).
            self._engine = sa.create_engine(normalize_url(url), poolclass=sa.pool.NullPool)

    @contextmanager
    def hold(self) -> Iterator[None]:
        if self._path is not None:
            with file_lock(f"{self._path}.{_key(self.study_name):x}.lock"):
                yield
        elif self._engine is not None:
            with self._engine.connect() as connection:
                connection.execute(sa.select(sa.func.pg_advisory_lock(_key(self.study_name))))
                try:
                    yield
                finally:
                    _unlock(connection, _key(self.study_name))
        else:
            with _memory_locks.setdefault(self.study_name, threading.Lock()):
                yield

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
