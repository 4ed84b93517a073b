"""Creating and upgrading the schema: Optuna's tables and regsweep's, in one database.

Optuna keeps its schema version in ``alembic_version``; ours lives in
``regsweep_alembic_version`` so the two histories never meet. Every process may call
:func:`upgrade_database` on start: it is idempotent, and concurrent callers take turns
under a lock (an advisory lock on PostgreSQL, a file lock beside a SQLite file), so two
workers starting together never both try to create the same table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from regcore.store._engine import create_engine_for, is_postgresql
from regcore.store._locks import file_lock
from regcore.store._optuna import create_storage, sqlite_path
from regcore.store._tables import Base

VERSION_TABLE = "regsweep_alembic_version"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"regsweep.migrate").digest()[:8], "big", signed=True)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Only regsweep's tables: Optuna's are Optuna's to migrate (alembic's ``include_name``)."""
    if type_ == "table":
        return name in Base.metadata.tables
    return True


def alembic_config(*, connection: sa.Connection | None = None, url: str | None = None) -> Config:
    """An Alembic config for our migrations, run on ``connection`` (or a new one to ``url``).

    For a new revision: ``alembic.command.revision(alembic_config(url=URL), message=...,
    autogenerate=True)`` against a database at head.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    config.attributes["url"] = url
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}; reinstall regsweep")
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision our tables are at, or None before the first upgrade."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade_database(url: str) -> None:
    """Create Optuna's tables and bring regsweep's to the newest revision; safe to repeat.

    A database already at the newest revision is left as it is after one query on one
    connection: every worker calls this as it starts, and 50 of them starting together
    would otherwise queue on the migration lock, each holding a connection while it waits
    and two more for Optuna's checks once it has it.
    """
    engine = create_engine_for(url, pool_size=1)
    try:
        if current_revision(engine) == head_revision():
            return  # Optuna's tables were made before ours (below)
        with _migration_lock(engine, url):
            # Optuna creates (and checks the version of) its own tables on construction.
            create_storage(url, pool_size=1).engine.dispose()
            with engine.connect() as connection, connection.begin():
                command.upgrade(alembic_config(connection=connection), "head")
    finally:
        engine.dispose()


@contextmanager
def _migration_lock(engine: sa.Engine, url: str) -> Iterator[None]:
    if is_postgresql(engine):
        with engine.connect() as connection:
            connection.execute(sa.select(sa.func.pg_advisory_lock(_LOCK_KEY)))
            connection.commit()
            try:
                yield
            finally:
                connection.execute(sa.select(sa.func.pg_advisory_unlock(_LOCK_KEY)))
                connection.commit()
        return
    path = sqlite_path(url)
    if path is None:
        raise ValueError(f"upgrade_database supports SQLite files and PostgreSQL, not {url!r}")
    with file_lock(f"{path}.migrate.lock"):
        yield
