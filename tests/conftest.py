"""Fixtures shared by the whole suite."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import torch

from tests.postgres import admin_engine, url_of

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ROOT = Path(__file__).resolve().parents[1]
# What regsweep writes into its working directory by default (settings) or a build leaves.
_RUN_OUTPUTS = ("artifacts", "data", "regsweep.db", "build")


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every device present: the CPU always, CUDA where there is one."""
    return torch.device(request.param)


@pytest.fixture(scope="session", autouse=True)
def _nothing_written_into_the_repository() -> Iterator[None]:
    """Tests work in their own folders: a test that leaves regsweep's outputs in the
    checkout (its defaults are relative to the working directory) fails the session."""
    before = {name for name in _RUN_OUTPUTS if (ROOT / name).exists()}
    yield
    written = {name for name in _RUN_OUTPUTS if (ROOT / name).exists()} - before
    assert not written, f"the tests wrote {sorted(written)} into {ROOT}; give them a tmp_path"


@pytest.fixture(scope="module")
def postgres_databases() -> Iterator[Callable[[], str]]:
    """Scratch PostgreSQL databases, dropped after the module."""
    admin = admin_engine()
    made: list[str] = []

    def make() -> str:
        made.append(f"regsweep_e2e_{uuid.uuid4().hex[:10]}")
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{made[-1]}"'))
        return url_of(made[-1])

    yield make
    with admin.connect() as connection:
        for name in made:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
