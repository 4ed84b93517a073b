"""A lock that every process working on the same study sees, for exact budgets.

SQLite: an advisory file lock beside the database file (all users of a SQLite file are on one
machine). PostgreSQL: a transaction-level advisory lock keyed by the study name, taken on a
connection of the caller's own pool (no connection of its own), so workers on any machine
serialize their claims; it is released when that transaction ends, or its connection drops.
"""

from __future__ import annotations

import fcntl
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from regcore.store._engine import write

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


class StudyLock:
    """The claim lock of the study ``study_name`` on ``engine``'s database.

    ``with lock.transaction() as connection:`` holds it for one write transaction, which is
    all a claim needs (the budget counted and its trials reserved on that connection);
    ``with lock.hold():`` holds it around work done on other connections (Optuna's).
    """

    def __init__(self, *, engine: sa.Engine, study_name: str) -> None:
        self.engine = engine
        self.study_name = study_name
        self._file: str | None = None
        if engine.dialect.name == "sqlite":
            database = engine.url.database
            if database not in (None, "", ":memory:"):
                self._file = f"{Path(database)}.{_key(study_name):x}.lock"

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A write transaction (:func:`regcore.store._engine.write`) holding the lock: what
        is written on the connection commits as the lock is released."""
        if self.engine.dialect.name != "postgresql":
            # The file lock first, then SQLite's write lock, as in hold() then a write: the
            # same order everywhere, so no process waits on the other for both.
            with self._local(), write(self.engine) as connection:
                yield connection
            return
        with write(self.engine) as connection:
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_key(self.study_name))))
            yield connection

    @contextmanager
    def hold(self) -> Iterator[None]:
        """The lock for the block, whatever the block does on other connections. PostgreSQL:
        one of the pool's connections, idle in the lock's transaction, for the block."""
        if self.engine.dialect.name != "postgresql":
            with self._local():
                yield
            return
        with self.engine.connect() as connection, connection.begin():
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_key(self.study_name))))
            yield

    @contextmanager
    def _local(self) -> Iterator[None]:
        if self._file is not None:
            with file_lock(self._file):
                yield
        else:  # a database in memory: this process's alone
            with _memory_locks.setdefault(self.study_name, threading.Lock()):
                yield
