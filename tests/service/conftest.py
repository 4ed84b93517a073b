"""The real app on real databases: a fresh, migrated SQLite file or PostgreSQL database for
every test, and an httpx client talking to the app in-process (ASGI, no sockets).

Each session migrates one template of each engine; a test's database is a copy of it (a
file copy, or ``CREATE DATABASE ... TEMPLATE``), so tests are isolated yet cheap.
PostgreSQL is found at ``REGSWEEP_TEST_POSTGRES_URL`` (default: the test machine's server,
``postgresql://postgres@127.0.0.1:5432/postgres``, trust auth). When it does not answer, its
tests fail under CI (``CI`` set) and are skipped elsewhere, saying why.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from regcore.service import create_app
from regcore.store import upgrade_database
from tests.postgres import admin_engine, url_of

ENGINES = ["sqlite", "postgresql"]
MakeApp = Callable[..., FastAPI]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "regsweep.db"
    upgrade_database(f"sqlite:///{path}")
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the file
    return path


@pytest.fixture(scope="session")
def new_postgres_url() -> Iterator[Callable[[], str]]:
    """Makes migrated PostgreSQL databases (copies of one template); drops them all after."""
    admin = admin_engine()
    prefix = f"regsweep_service_{uuid.uuid4().hex[:8]}"
    template, made = f"{prefix}_template", []

    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{template}"'))
    made.append(template)
    upgrade_database(url_of(template))

    def make() -> str:
        name = f"{prefix}_{len(made)}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        made.append(name)
        return url_of(name)

    yield make
    with admin.connect() as connection:
        for name in reversed(made):
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database of each engine."""
    if request.param == "sqlite":
        path = tmp_path / "regsweep.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"
    make: Callable[[], str] = request.getfixturevalue("new_postgres_url")
    return make()


@pytest.fixture
def make_app(database_url: str) -> Iterator[MakeApp]:
    """Builds apps on the test's database (``make_app(api_tokens=...)``); closes them after."""
    apps: list[FastAPI] = []

    def make(**kwargs: Any) -> FastAPI:
        app = create_app(**{"database_url": database_url, **kwargs})
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.state.database.dispose()


def client_for(app: FastAPI, **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://regsweep.test", headers=headers)


@pytest.fixture
async def client(make_app: MakeApp) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with auth off."""
    async with client_for(make_app()) as http:
        yield http


def make_spec(name: str = "sweep", **overrides: Any) -> dict[str, Any]:
    """A small valid spec (diabetes, λ₁ = 0, a λ₂ range); ``overrides`` replace sections."""
    spec: dict[str, Any] = {
        "name": name,
        "workload": {"name": "diabetes_linear"},
        "search_space": {"l1": 0, "l2": {"low": 1e-6, "high": 1e-2, "log": True}},
        "training": {"epochs": 2},
        "sampler": {"name": "tpe", "seed": 0},
        "budget": {"n_trials": 4},
        "confirm": False,
    }
    return {**spec, **overrides}


def require(module: str, *, why: str) -> ModuleType:
    """``module``, imported; when it is missing its tests fail under CI (``CI`` set), where a
    silent skip would pass a run that checked nothing, and are skipped elsewhere, saying why."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        message = f"{module} is not installed ({error}); {why}"
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {module}: {message}", pytrace=False)
        pytest.skip(message, allow_module_level=True)
