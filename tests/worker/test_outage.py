"""PostgreSQL going away for a few seconds mid-sweep, with real ``regsweep worker`` processes.

The shared test server is not stopped (other tests use it): the workers reach it through a
:class:`tests.tcp_proxy.TcpProxy`, and the outage is the proxy closing every connection and
refusing new ones, which is what clients see when the server stops and starts again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa

from regcore.spec import parse_spec
from regcore.store import (
    count_trials,
    create_engine_for,
    create_storage,
    get_sweep,
    insert_sweep,
    upgrade_database,
)
from regcore.studies import open_study
from tests.postgres import admin_engine, url_of
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_until

N_TRIALS = 10
OUTAGE_S = 5.0
SPEC: dict[str, Any] = {
    "name": "outage",
    "workload": {"name": "sparse_regression", "params": {"n_samples": 200, "n_features": 20}},
    "search_space": {
        "l1": {"low": 1e-3, "high": 1e-1, "log": True},
        "l2": 0.0,
        "method": "proximal",
    },
    # Each epoch reports to the storage, so an outage mid-trial hits the trial too.
    "training": {"epochs": 50, "batch_size": 50, "device": "cpu"},
    "pruner": {"name": "none"},
    "budget": {"n_trials": N_TRIALS},
}


@pytest.fixture
def database_url() -> Iterator[str]:
    """A scratch PostgreSQL database, migrated; dropped after the test."""
    admin = admin_engine()
    name = f"regsweep_outage_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        upgrade_database(url_of(name))
        yield url_of(name)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    server = sa.make_url(database_url)
    with TcpProxy((server.host or "127.0.0.1", server.port or 5432)) as p:
        yield p
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("tcp-proxy")]
    assert not leaked, f"the proxy left threads behind: {leaked}"


class Workers:
    """``regsweep worker`` processes whose database is reached through the proxy."""

    def __init__(self, url: str, logs: Path) -> None:
        self.env = {
            **os.environ,
            "REGSWEEP_DATABASE_URL": url,
            "REGSWEEP_HEARTBEAT_S": "1",
            "REGSWEEP_GRACE_S": "4",
            "OMP_NUM_THREADS": "1",
        }
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, n: int) -> None:
        command = [sys.executable, "-m", "regcore.cli", "worker", "--device", "cpu"]
        for i in range(n):
            with open(self.logs / f"worker{i}.log", "wb") as log:
                self.processes.append(
                    subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
                )

    def output(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.logs.glob("worker*.log"))
        )

    def stop(self) -> list[int | None]:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=30))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                codes.append(None)
        return codes


@pytest.fixture
def workers(proxy: TcpProxy, database_url: str, tmp_path: Path) -> Iterator[Workers]:
    proxied = sa.make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    w = Workers(proxied.render_as_string(hide_password=False), tmp_path)
    yield w
    w.stop()


def trial_table(study: optuna.Study) -> str:
    return "\n".join(
        f"{t.number}: {t.state.name} {t.user_attrs.get('fail_reason') or ''} {t.system_attrs}"
        for t in study.get_trials(deepcopy=False)
    )


def test_workers_recover_when_postgres_drops_for_seconds(
    database_url: str, proxy: TcpProxy, workers: Workers
) -> None:
    spec = parse_spec(SPEC)
    engine = create_engine_for(database_url)  # straight to the server, not through the proxy
    storage = create_storage(database_url)
    try:
        sweep = insert_sweep(engine, spec_json=spec.to_json_dict(), name=spec.name)
        open_study(spec, storage, user_attrs={"sweep_id": sweep.id})
        study = optuna.load_study(study_name=spec.name, storage=storage)

        def finished() -> int:
            return count_trials(engine, spec.name).finished

        def report() -> str:
            return f"{trial_table(study)}\n{workers.output()}"

        workers.start(2)
        wait_until(lambda: finished() >= 1, 60, "a first finished trial")

        with proxy.outage() as cut:
            before = finished()
            threading.Event().wait(OUTAGE_S)
        assert cut > 0, "the outage closed no connection: the workers were not using the proxy"
        assert before < N_TRIALS, "the sweep ended before the outage; give it more trials"
        assert all(p.poll() is None for p in workers.processes), report()

        try:
            wait_until(lambda: get_sweep(engine, sweep.id).status != "running", 60, "the end")
        except pytest.fail.Exception:
            pytest.fail(f"the sweep did not end after the outage:\n{report()}", pytrace=False)
        assert get_sweep(engine, sweep.id).status == "completed", report()
        counts = count_trials(engine, spec.name)
        assert counts.running == counts.by_state["WAITING"] == 0, report()
        # Exactly the budget by the workers' own rule, and no point lost as a failure.
        assert counts.finished == counts.by_state["COMPLETE"] == N_TRIALS, report()
        assert all(p.poll() is None for p in workers.processes), report()
    finally:
        storage.remove_session()
        storage.engine.dispose()
        engine.dispose()

    assert workers.stop() == [0, 0], workers.output()
