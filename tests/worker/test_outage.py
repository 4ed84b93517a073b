"""PostgreSQL going away for a few seconds mid-sweep, with real ``regsweep worker`` processes
and with ``regsweep run`` (whose workers are the same).

The shared test server is not stopped (other tests use it): the workers reach it through a
:class:`tests.tcp_proxy.TcpProxy`, and the outage is the proxy closing every connection and
refusing new ones, which is what clients see when the server stops and starts again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa

from regcore.spec import parse_spec
from regcore.store import (
    SweepNotFoundError,
    SweepRow,
    count_trials,
    create_engine_for,
    create_storage,
    get_sweep,
    get_sweep_by_name,
    insert_sweep,
)
from regcore.sweeps.studies import open_study
from tests.postgres import scratch_database
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
    "sampler": {"name": "tpe", "seed": 0},  # sampled, not walked as a path
    "confirm": False,
    "budget": {"n_trials": N_TRIALS},
}


@pytest.fixture
def database_url() -> Iterator[str]:
    """A scratch PostgreSQL database, migrated; dropped after the test."""
    with scratch_database("regsweep_outage") as url:
        yield url


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    server = sa.make_url(database_url)
    with TcpProxy((server.host or "127.0.0.1", server.port or 5432)) as p:
        yield p
    leaked = [t.name for t in threading.enumerate() if t.name.startswith("tcp-proxy")]
    assert not leaked, f"the proxy left threads behind: {leaked}"


class Processes:
    """``regsweep`` processes whose database is reached through the proxy: two
    ``regsweep worker``s, or one ``regsweep run --workers 2`` (the same workers, limited to
    its sweep)."""

    def __init__(self, url: str, logs: Path) -> None:
        self.url = url
        self.env = {
            **os.environ,
            "REGSWEEP_DATABASE_URL": url,
            "REGSWEEP_HEARTBEAT_S": "1",
            "REGSWEEP_GRACE_S": "4",
            "REGSWEEP_ARTIFACT_DIR": str(logs / "artifacts"),
            "OMP_NUM_THREADS": "1",
        }
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> None:
        command = [sys.executable, "-m", "regcore.cli", *args]
        with open(self.logs / f"process{len(self.processes)}.log", "wb") as log:
            self.processes.append(
                subprocess.Popen(
                    command, env=self.env, cwd=self.logs, stdout=log, stderr=subprocess.STDOUT
                )
            )

    def output(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.logs.glob("process*.log"))
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
def processes(proxy: TcpProxy, database_url: str, tmp_path: Path) -> Iterator[Processes]:
    proxied = sa.make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    p = Processes(proxied.render_as_string(hide_password=False), tmp_path)
    yield p
    p.stop()


def trial_table(study: optuna.Study) -> str:
    return "\n".join(
        f"{t.number}: {t.state.name} {t.user_attrs.get('fail_reason') or ''} {t.system_attrs}"
        for t in study.get_trials(deepcopy=False)
    )


@pytest.mark.parametrize("command", ["worker", "run"])
def test_sweeps_recover_when_postgres_drops_for_seconds(
    command: str, database_url: str, proxy: TcpProxy, processes: Processes, tmp_path: Path
) -> None:
    spec = parse_spec(SPEC)
    engine = create_engine_for(database_url)  # straight to the server, not through the proxy
    storage = create_storage(database_url)
    try:
        if command == "worker":
            sweep = insert_sweep(engine, spec_json=spec.to_json_dict(), name=spec.name)
            open_study(spec, storage, user_attrs={"sweep_id": sweep.id})
            for _ in range(2):
                processes.start("worker", "--device", "cpu")
        else:
            spec_file = tmp_path / "outage.yaml"
            spec_file.write_text(json.dumps(spec.to_json_dict()))
            processes.start("run", str(spec_file), "--workers", "2", "--storage", processes.url)
            wait_until(lambda: _sweep_named(engine, spec.name) is not None, 60, "the sweep")
        sweep = _sweep_named(engine, spec.name)
        assert sweep is not None

        def finished() -> int:
            return count_trials(engine, spec.name).finished

        def report() -> str:
            study = optuna.load_study(study_name=spec.name, storage=storage)
            return f"{trial_table(study)}\n{processes.output()}"

        wait_until(lambda: finished() >= 1, 60, "a first finished trial")
        with proxy.outage() as cut:
            before = finished()
            threading.Event().wait(OUTAGE_S)
        assert cut > 0, "the outage closed no connection: the workers were not using the proxy"
        assert before < N_TRIALS, "the sweep ended before the outage; give it more trials"
        if command == "worker":
            assert all(p.poll() is None for p in processes.processes), report()

        try:
            wait_until(lambda: get_sweep(engine, sweep.id).status != "running", 60, "the end")
        except pytest.fail.Exception:
            pytest.fail(f"the sweep did not end after the outage:\n{report()}", pytrace=False)
        assert get_sweep(engine, sweep.id).status == "completed", report()
        counts = count_trials(engine, spec.name)
        assert counts.running == counts.by_state["WAITING"] == 0, report()
        # Exactly the budget by the workers' own rule, and no point lost as a failure.
        assert counts.finished == counts.by_state["COMPLETE"] == N_TRIALS, report()
        if command == "run":  # it ends with its sweep, and says so
            assert processes.processes[0].wait(timeout=60) == 0, report()
            assert "Results are in" in processes.output()
        else:  # workers keep taking sweeps until stopped
            assert all(p.poll() is None for p in processes.processes), report()
            assert processes.stop() == [0, 0], processes.output()
    finally:
        storage.remove_session()
        storage.engine.dispose()
        engine.dispose()


def _sweep_named(engine: sa.Engine, name: str) -> SweepRow | None:
    try:
        return get_sweep_by_name(engine, name)
    except SweepNotFoundError:
        return None
