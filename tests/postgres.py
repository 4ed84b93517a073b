"""The PostgreSQL server the suite's storage tests use, found or refused in one place.

``REGSWEEP_TEST_POSTGRES_URL`` (default: the test machine's server, trust auth). When it does
not answer, tests that need it fail under CI (``CI`` set: ``.ci/run`` starts the server) and
are skipped elsewhere, saying why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

POSTGRES_URL = os.environ.get(
    "REGSWEEP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def admin_engine() -> sa.Engine:
    """An AUTOCOMMIT engine on the server's maintenance database (to create databases)."""
    engine = sa.create_engine(
        POSTGRES_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as error:
        engine.dispose()
        message = (
            f"no PostgreSQL server answers at {POSTGRES_URL} ({type(error).__name__}: {error}); "
            "start one (the test machine runs it on 127.0.0.1:5432, trust auth) or point "
            "REGSWEEP_TEST_POSTGRES_URL at one"
        )
        if os.environ.get("CI"):
            pytest.fail(f"CI needs PostgreSQL: {message}", pytrace=False)
        pytest.skip(message)
    return engine


def url_of(database: str) -> str:
    """The URL of another database on the same server."""
    return sa.make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """The URL of a new database named ``prefix`` and a random suffix, migrated to regsweep's
    schema; dropped (its connections ended) afterwards."""
    from regcore.store import upgrade_database

    admin = admin_engine()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        upgrade_database(url_of(name))
        yield url_of(name)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
