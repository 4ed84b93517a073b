"""Secrets never reach the logs: a real ``regsweep serve`` and a real ``regsweep worker``,
started with a token and a database password, print neither from start to SIGTERM.

Processes log to files (a pipe nobody reads could fill and stall them) and run in
``tmp_path``, so nothing lands in the repository.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from regcore.store import create_engine_for, list_workers
from tests.postgres import admin_engine, url_of
from tests.waiting import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Secrets:
    token: str
    password: str
    database_url: str
    env: dict[str, str]


@pytest.fixture
def with_secrets(tmp_path: Path) -> Iterator[Secrets]:
    """A scratch PostgreSQL database whose URL carries a password (trust auth accepts any),
    and the environment of a process that uses it and an API token."""
    admin = admin_engine()
    name = f"regsweep_logs_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    token, password = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    url = sa.make_url(url_of(name)).set(password=password).render_as_string(hide_password=False)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REGSWEEP_")},
        "REGSWEEP_API_TOKENS": f"alice:{token}",
        "REGSWEEP_DATABASE_URL": url,
        "REGSWEEP_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "REGSWEEP_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    try:
        yield Secrets(token=token, password=password, database_url=url, env=env)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def regsweep(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``regsweep ARGS`` running in ``cwd`` (output in ``cwd/regsweep.log``); killed at the
    end if it is still running, so a failed test leaves no process behind."""
    with (cwd / "regsweep.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "regcore.cli", *args],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def stop(process: subprocess.Popen[bytes], log: Path) -> str:
    """SIGTERM, the wait for a clean exit, and everything the process printed."""
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"no exit within 60 s of SIGTERM; its output:\n{log.read_text()}")
    output = log.read_text(errors="replace")
    assert code == 0, output
    return output


def assert_no_secret(output: str, given: Secrets) -> None:
    assert given.token not in output, "the API token is in the log"
    assert given.password not in output, "the database password is in the log"


def test_serve_logs_neither_token_nor_database_password(
    tmp_path: Path, with_secrets: Secrets
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    with regsweep(args, with_secrets.env, tmp_path) as process:
        wait_until(lambda: healthy() or process.poll() is not None, 60, "regsweep serve to start")
        assert process.poll() is None, (tmp_path / "regsweep.log").read_text()
        headers = {"authorization": f"Bearer {with_secrets.token}"}
        listed = httpx.get(f"{base}/v1/sweeps", headers=headers, timeout=10)
        output = stop(process, tmp_path / "regsweep.log")

    assert listed.status_code == 200, listed.text
    assert "GET /v1/sweeps" in output  # the log was captured, access log included
    assert_no_secret(output, with_secrets)


def test_worker_logs_neither_token_nor_database_password(
    tmp_path: Path, with_secrets: Secrets
) -> None:
    engine = create_engine_for(with_secrets.database_url)

    def registered() -> bool:
        try:
            return bool(list_workers(engine))
        except sa.exc.DatabaseError:  # its tables are not there until it has upgraded
            return False

    try:
        with regsweep(["worker", "--device", "cpu"], with_secrets.env, tmp_path) as process:
            wait_until(
                lambda: registered() or process.poll() is not None, 120, "the worker to register"
            )
            assert process.poll() is None, (tmp_path / "regsweep.log").read_text()
            output = stop(process, tmp_path / "regsweep.log")
    finally:
        engine.dispose()

    assert output.strip()  # it says which database it takes trials from
    assert_no_secret(output, with_secrets)
