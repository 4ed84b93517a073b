"""Databases for the store's tests: a SQLite file per test, and a PostgreSQL database per
test module (dropped after it), both migrated by ``upgrade_database``.

PostgreSQL is found at ``REGSWEEP_TEST_POSTGRES_URL`` (default: the test machine's server,
``postgresql://postgres@127.0.0.1:5432/postgres``). When it does not answer, its tests fail
under CI (the environment variable ``CI`` set) and are skipped elsewhere, saying why.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from regcore.store import create_engine_for, upgrade_database
from tests.postgres import admin_engine, url_of

ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="module")
def new_postgres_database() -> Iterator[Callable[[], str]]:
    """Makes empty databases on the PostgreSQL server; drops them after the module."""
    admin = admin_engine()
    made: list[str] = []

    def make() -> str:
        name = f"regsweep_test_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return url_of(name)

    yield make
    with admin.connect() as connection:
        for name in made:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def postgres_url(new_postgres_database: Callable[[], str]) -> str:
    """One migrated PostgreSQL database shared by a module's tests."""
    url = new_postgres_database()
    upgrade_database(url)
    return url


@pytest.fixture(params=ENGINES)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables at all."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'regsweep.db'}"
    make: Callable[[], str] = request.getfixturevalue("new_postgres_database")
    return make()


@pytest.fixture(params=ENGINES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database whose sweeps and workers tables are empty."""
    if request.param == "sqlite":
        sqlite_url = f"sqlite:///{tmp_path / 'regsweep.db'}"
        upgrade_database(sqlite_url)
        return sqlite_url
    shared: str = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(shared)
    with engine.begin() as connection:
        connection.execute(sa.text("TRUNCATE workers, sweeps"))
    engine.dispose()
    return shared


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    engine = create_engine_for(url)
    yield engine
    engine.dispose()
