"""The product as a user runs it: ``regsweep serve`` and ``regsweep worker`` processes on one
database, and a REST client with a token."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.waiting import free_port, wait_until

#: A sweep that runs in seconds: what :meth:`Product.submit` sends, with a name and budget.
SPEC: dict[str, Any] = {
    "workload": {"name": "sparse_regression", "params": {"n_samples": 200, "n_features": 20}},
    "search_space": {
        "l1": {"low": 1e-3, "high": 1e-1, "log": True},
        "l2": 0.0,
        "method": ["proximal", "fused"],
    },
    "training": {"epochs": 3, "batch_size": 200, "device": "cpu"},
    "pruner": {"name": "none"},
    "sampler": {"name": "tpe", "seed": 0},  # sampled, not walked as a path
    "confirm": False,
}


class Product:
    """The service and workers as processes; ``folder`` is their working directory."""

    def __init__(self, database_url: str, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.env = {
            **os.environ,
            "REGSWEEP_DATABASE_URL": database_url,
            "REGSWEEP_ARTIFACT_DIR": str(folder / "artifacts"),
            "REGSWEEP_DATA_DIR": str(folder / "data"),
            "REGSWEEP_SERVICE_URL": f"http://127.0.0.1:{self.port}",
            "REGSWEEP_TOKEN": "s3cret",
            "REGSWEEP_API_TOKENS": "alice:s3cret",
            "REGSWEEP_HEARTBEAT_S": "1",
            "REGSWEEP_GRACE_S": "4",
            "OMP_NUM_THREADS": "1",
        }
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": "Bearer s3cret"},
            timeout=10,
        )
        self.service: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []

    def _regsweep(self, *args: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "regcore.cli", *args]
        return subprocess.Popen(command, env=self.env, cwd=self.folder)

    def start_service(self, *options: str) -> None:
        self.service = self._regsweep("serve", "--port", str(self.port), *options)

        def ready() -> bool:
            try:
                return self.client.get("/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 60, "the service to answer /readyz")

    def stop_service(self) -> None:
        assert self.service is not None
        self.service.send_signal(signal.SIGTERM)
        # uvicorn shuts down cleanly, then re-raises the signal it caught
        assert self.service.wait(timeout=30) in (0, -signal.SIGTERM)

    def start_workers(self, n: int) -> None:
        self.workers += [self._regsweep("worker", "--device", "cpu") for _ in range(n)]

    def submit(self, name: str, n_trials: int, priority: int) -> str:
        body = {**SPEC, "name": name, "priority": priority, "budget": {"n_trials": n_trials}}
        response = self.client.post("/v1/sweeps", json=body)
        assert response.status_code == 201, response.text
        assert response.headers["location"].endswith(response.json()["id"])
        sweep_id: str = response.json()["id"]
        return sweep_id

    def sweep(self, sweep_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.client.get(f"/v1/sweeps/{sweep_id}").json()
        return body

    def close(self) -> None:
        for process in [*self.workers, *([self.service] if self.service else [])]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, *([self.service] if self.service else [])]:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.client.close()
