"""How many PostgreSQL connections real ``regsweep worker`` processes hold: no more than their
one pool of 2, from start to exit, whatever their threads do at once (claims under the
study's lock, trials, the confirmation after the search, heartbeats, the webhook courier),
so 40 workers and the service fit PostgreSQL's default ``max_connections = 100``.

Counted from outside, as the server sees them: the TCP connections to the server's port
that each worker's processes hold open (``/proc``), sampled every few milliseconds."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from regcore.spec import parse_spec
from regcore.store import (
    count_trials,
    create_engine_and_storage,
    create_engine_for,
    create_storage,
    get_sweep,
    insert_sweep,
)
from regcore.sweeps.studies import open_study
from tests.postgres import scratch_database
from tests.waiting import wait_until

WORKERS = 3
N_TRIALS = 18
SPEC = {
    "workload": {"name": "sparse_regression", "params": {"n_samples": 200, "n_features": 20}},
    "search_space": {"l1": {"low": 1e-3, "high": 1e-1, "log": True}, "l2": 0.0},
    "training": {"epochs": 3, "batch_size": 200, "device": "cpu"},
    "pruner": {"name": "none"},
    "sampler": {"name": "tpe", "seed": 0},
    "confirm": {"seeds": 2, "top": 1},  # claimed under the study's lock after the search
    "budget": {"n_trials": N_TRIALS},
}


@pytest.fixture
def database_url() -> Iterator[str]:
    """A scratch PostgreSQL database, migrated; dropped after the test."""
    with scratch_database("regsweep_conns") as url:
        yield url


def server_sockets(port: int) -> set[str]:
    """``socket:[INODE]`` of every established TCP connection to ``port`` on this machine."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[2].endswith(f":{port:04X}") and fields[3] == "01":
                found.add(f"socket:[{fields[9]}]")
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a training function's child, say)."""
    tree, i = [pid], 0
    while i < len(tree):
        for task in Path(f"/proc/{tree[i]}/task").glob("*"):
            with contextlib.suppress(OSError):  # exited meanwhile
                tree += [int(c) for c in (task / "children").read_text().split()]
        i += 1
    return tree


def connections_held(pid: int, sockets: set[str]) -> int:
    held = 0
    for member in process_tree(pid):
        try:
            fds = list(Path(f"/proc/{member}/fd").iterdir())
        except OSError:  # exited meanwhile
            continue
        for fd in fds:
            try:
                held += os.readlink(fd) in sockets
            except OSError:
                continue
    return held


class Census:
    """Every few milliseconds, on a thread: the most connections each worker has held."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.pids: list[int] = []
        self.most: dict[int, int] = {}
        self.samples = 0
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Census:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stop.wait(0.005):
            sockets = server_sockets(self.port)
            for pid in list(self.pids):
                held = connections_held(pid, sockets)
                self.most[pid] = max(self.most.get(pid, 0), held)
            self.samples += 1


def test_a_worker_holds_at_most_two_connections_from_start_to_exit(
    database_url: str, tmp_path: Path
) -> None:
    engine, storage = create_engine_for(database_url), create_storage(database_url)
    spec = parse_spec({**SPEC, "name": f"conns-{uuid.uuid4().hex[:6]}"})
    row = insert_sweep(engine, spec_json=spec.to_json_dict(), name=spec.name)
    open_study(spec, storage, user_attrs={"sweep_id": row.id})
    storage.engine.dispose()
    env = {
        **os.environ,
        "REGSWEEP_DATABASE_URL": database_url,
        "REGSWEEP_HEARTBEAT_S": "1",
        "REGSWEEP_GRACE_S": "4",
        "REGSWEEP_ARTIFACT_DIR": str(tmp_path / "artifacts"),
        "OMP_NUM_THREADS": "1",
    }
    command = [sys.executable, "-m", "regcore.cli", "worker", "--device", "cpu"]
    port = sa.make_url(database_url).port or 5432
    workers: list[subprocess.Popen[bytes]] = []
    with Census(port) as census:
        try:
            for i in range(WORKERS):
                with (tmp_path / f"worker{i}.log").open("wb") as log:
                    worker = subprocess.Popen(
                        command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
                    )
                workers.append(worker)
                census.pids.append(worker.pid)
            wait_until(lambda: get_sweep(engine, row.id).is_final, 300, "the sweep's end")
        finally:
            for worker in workers:
                worker.terminate()
            codes = [worker.wait(timeout=60) for worker in workers]
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("worker*.log"))
    assert codes == [0] * WORKERS, logs
    assert get_sweep(engine, row.id).status == "completed", logs
    counts = count_trials(engine, spec.name)
    engine.dispose()
    assert counts.finished == N_TRIALS
    assert counts.confirm_by_state["COMPLETE"] > 0
    assert census.samples > 20
    # Every worker was seen connected (the census counts what it should), none past its pool.
    assert sorted(census.most.values()) != [0] * WORKERS
    assert all(1 <= n <= 2 for n in census.most.values()), census.most


def test_a_workers_connections_carry_its_name(database_url: str, tmp_path: Path) -> None:
    """What an operator reads in ``pg_stat_activity``: whose connections these are."""
    name = f"regsweep worker {socket.gethostname()}:{os.getpid()}"
    engine, storage = create_engine_and_storage(database_url, application_name=name)
    try:
        with engine.connect() as connection:
            seen = connection.execute(sa.text("SHOW application_name")).scalar_one()
        assert seen == name
    finally:
        storage.engine.dispose()
