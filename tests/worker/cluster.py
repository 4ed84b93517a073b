"""Real worker processes on one database, for tests: sweeps queued, workers started, killed
or stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import optuna

from regcore.spec import parse_spec
from regcore.store import (
    create_engine_for,
    create_storage,
    get_sweep,
    insert_sweep,
    upgrade_database,
)
from regcore.sweeps.studies import open_study

FAST = {
    "workload": {"name": "sparse_regression", "params": {"n_samples": 200, "n_features": 20}},
    "search_space": {
        "l1": {"low": 1e-3, "high": 1e-1, "log": True},
        "l2": 0.0,
        "method": "proximal",
    },
    "training": {"epochs": 3, "batch_size": 200, "device": "cpu"},
    "pruner": {"name": "none"},
    "sampler": {"name": "tpe", "seed": 0},  # sampled, not walked as a path
    "confirm": False,
}


SLOW = {
    **FAST,
    "workload": {"name": "digits_mlp", "params": {"hidden": [256, 256]}},
    "training": {"epochs": 30, "batch_size": 16, "device": "cpu"},
}


class Cluster:
    """A database and the worker processes working on it."""

    def __init__(self, url: str, folder: Path, *, env: dict[str, str] | None = None) -> None:
        self.url = url
        self.folder = folder  # the workers' working directory: nothing lands in the repository
        self.extra_env = env or {}
        upgrade_database(url)
        self.engine = create_engine_for(url)
        self.storage = create_storage(url)
        self.workers: list[subprocess.Popen[bytes]] = []

    def submit(self, name: str, n_trials: int, *, priority: int = 0, base: Any = FAST) -> str:
        spec = parse_spec({**base, "name": name, "budget": {"n_trials": n_trials}})
        row = insert_sweep(self.engine, spec_json=spec.to_json_dict(), name=name, priority=priority)
        open_study(spec, self.storage, user_attrs={"sweep_id": row.id})
        return row.id

    def start_workers(self, n: int, *, stderr: IO[str] | None = None) -> None:
        env = {
            **os.environ,
            "REGSWEEP_DATABASE_URL": self.url,
            "REGSWEEP_HEARTBEAT_S": "1",
            "REGSWEEP_GRACE_S": "4",
            "REGSWEEP_ARTIFACT_DIR": str(self.folder / "artifacts"),
            "REGSWEEP_DATA_DIR": str(self.folder / "data"),
            "OMP_NUM_THREADS": "1",
            **self.extra_env,
        }
        command = [sys.executable, "-m", "regcore.cli", "worker", "--device", "cpu"]
        for _ in range(n):
            # Each in a process group of its own, as on a machine of its own (kill_machine).
            worker = subprocess.Popen(
                command, env=env, cwd=self.folder, start_new_session=True, stderr=stderr
            )
            self.workers.append(worker)

    def kill_machine(self, pid: int) -> None:
        """kill -9 a worker with every process it started, as when its machine disappears."""
        os.killpg(pid, signal.SIGKILL)

    def study(self, name: str) -> optuna.Study:
        return optuna.load_study(study_name=name, storage=self.storage)

    def status(self, sweep_id: str) -> str:
        return get_sweep(self.engine, sweep_id).status

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.engine.dispose()
