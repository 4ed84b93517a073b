"""Failures that say what to do: a database the command cannot reach is one line naming it
(password hidden) and the fix, never a traceback; ``postgres://`` URLs work; ``status``
shows why a sweep failed and why its trials did."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from regcore.cli import app
from regcore.spec import parse_spec
from regcore.store import create_engine_for, create_storage, finish_sweep, set_user_attrs
from regcore.sweeps import studies
from tests.postgres import admin_engine, url_of

ROOT = Path(__file__).resolve().parents[2]
SPEC = {
    "name": "doomed",
    "workload": {"name": "diabetes_linear"},
    "search_space": {"l1": 0, "l2": {"low": 1e-6, "high": 1e-2, "log": True}},
    "confirm": False,
    "budget": {"n_trials": 8},
}


def regsweep(*args: str, url: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``regsweep ARGS`` in a process of its own, as a user runs it."""
    env = {**os.environ, "REGSWEEP_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    env.pop("REGSWEEP_SERVICE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "regcore.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


UNREACHABLE = "postgresql://regsweep:hunter2@127.0.0.1:1/regsweep"  # nothing listens on port 1


@pytest.mark.parametrize(
    "command",
    [["worker", "--device", "cpu"], ["serve", "--port", "8799"], ["run", "examples/digits.yaml"]],
    ids=["worker", "serve", "run"],
)
def test_an_unreachable_database_is_one_line_naming_it(command: list[str]) -> None:
    result = regsweep(*command, url=UNREACHABLE)

    output = (result.stdout + result.stderr).strip()
    lines = output.splitlines()
    if command[0] == "run":  # its progress bar is drawn before the database is opened
        lines = [line for line in lines if "digits-small-data" not in line]
    assert result.returncode == 1, output
    assert len(lines) == 1, output
    assert lines[0].startswith("cannot reach the database"), output
    assert "Traceback" not in output
    assert "postgresql://regsweep:***@127.0.0.1:1/regsweep" in output
    assert "hunter2" not in output
    assert "REGSWEEP_DATABASE_URL" in output


def test_a_missing_database_says_to_create_it() -> None:
    missing = url_of("regsweep_no_such_database")
    admin_engine().dispose()  # fails under CI, skips elsewhere, when PostgreSQL is not up

    result = regsweep("status", url=missing)

    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    assert len(output.splitlines()) == 1, output
    assert 'database "regsweep_no_such_database" does not exist' in output
    assert "createdb" in output


def test_a_server_out_of_connections_says_how_many_each_process_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sqlalchemy as sa

    from regcore.cli._app import database_error

    monkeypatch.setenv("REGSWEEP_DATABASE_URL", "postgresql://regsweep:hunter2@db:5432/sweeps")
    # What psycopg raises when every slot of max_connections is taken, as SQLAlchemy wraps it.
    refused = sa.exc.OperationalError(
        None, None, Exception("connection failed: FATAL:  sorry, too many clients already")
    )
    line = database_error(refused)
    assert line is not None
    assert "hunter2" not in line
    assert "too many clients already" in line
    assert "max_connections to at least 2 × workers" in line


def test_an_unreachable_storage_option_is_the_url_named() -> None:
    result = regsweep("status", "--storage", UNREACHABLE.replace(":1/", ":2/"), url="sqlite://")

    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    assert "127.0.0.1:2" in output
    assert "--storage" in output


@pytest.fixture
def postgres_short_url() -> Iterator[str]:
    """A fresh PostgreSQL database, named by a ``postgres://`` URL."""
    name = f"regsweep_short_{os.getpid()}"
    admin = admin_engine()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield url_of(name).replace("postgresql://", "postgres://", 1)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def test_postgres_urls_work_as_postgresql(postgres_short_url: str) -> None:
    assert postgres_short_url.startswith("postgres://")

    upgraded = regsweep("db", "upgrade", url=postgres_short_url)
    listed = regsweep("status", url=postgres_short_url)

    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert listed.returncode == 0, listed.stdout + listed.stderr
    engine, storage = create_engine_for(postgres_short_url), create_storage(postgres_short_url)
    studies.create_sweep(engine, storage, parse_spec(SPEC))
    assert optuna.get_all_study_names(storage) == ["doomed"]
    storage.engine.dispose()
    engine.dispose()


def test_status_shows_the_sweeps_error_and_why_its_trials_failed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'regsweep.db'}"
    assert regsweep("db", "upgrade", url=url).returncode == 0
    engine, storage = create_engine_for(url), create_storage(url)
    row = studies.create_sweep(engine, storage, parse_spec(SPEC))
    study = optuna.load_study(study_name=row.study_name, storage=storage)
    reasons = ["ImportError: No module named 'mylib' (at train.py:3)"] * 3 + ["diverged: loss nan"]
    for reason in reasons:  # as the worker ends a trial that raised (regcore.worker.trial_end.fail)
        trial = study.ask()
        set_user_attrs(trial, {"fail_reason": reason, "final_failure": True})
        study.tell(trial, state=TrialState.FAIL)
    finish_sweep(engine, row.id, "failed", error="every trial failed: ImportError\nsee the log")
    storage.engine.dispose()
    engine.dispose()

    one = CliRunner().invoke(app, ["status", row.id], env={"REGSWEEP_DATABASE_URL": url})
    every = CliRunner().invoke(app, ["status"], env={"REGSWEEP_DATABASE_URL": url})

    assert one.exit_code == 0, one.output
    assert "every trial failed: ImportError" in one.output
    assert "see the log" in one.output
    assert "4 failed trial(s)" in one.output
    assert "3 × ImportError: No module named 'mylib'" in one.output
    assert "1 × diverged: loss nan" in one.output
    assert "train.py" not in one.output
    assert every.exit_code == 0, every.output
    assert "every trial failed: ImportError" in every.output
