"""Sweeps submitted while workers poll, with the service's database far away: how many are
lost (end ``failed``, or complete without their λ = 0 baseline).

    python bench/submission_race.py                      # this checkout, 80 sweeps, 20 ms
    python bench/submission_race.py --before /tmp/old    # and another checkout, same run

For each checkout, on a scratch PostgreSQL database (created on ``--postgres``, dropped after):
``regsweep serve`` reaching the database through a TCP proxy that adds ``--latency-ms`` to
every round trip (tests/tcp_proxy.py), ``--workers`` idle ``regsweep worker`` processes
polling the database directly, and ``--sweeps`` one-trial sweeps submitted one at a time
over REST; then, once every sweep has ended, the count of those that did not complete and of
those that completed without a COMPLETE baseline trial. ``submit ms``: the median answer time
of ``POST /v1/sweeps`` (the proxy's latency included). A checkout runs with
``PYTHONPATH`` set to it (its service and workers, and its migrations).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import optuna
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.tcp_proxy import TcpProxy  # noqa: E402

SPEC: dict[str, Any] = {
    "workload": {"name": "sparse_regression", "params": {"n_samples": 200, "n_features": 20}},
    "search_space": {"l1": {"low": 1e-3, "high": 1e-1, "log": True}, "l2": 0.0},
    "training": {"epochs": 1, "batch_size": 200, "device": "cpu"},
    "pruner": {"name": "none"},
    "sampler": {"name": "tpe", "seed": 0},
    "confirm": False,
    "budget": {"n_trials": 1},
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run(checkout: Path, args: argparse.Namespace) -> dict[str, Any]:
    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    name = f"regsweep_race_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(args.postgres).set(database=name)
    direct = url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    env |= {"REGSWEEP_HEARTBEAT_S": "1", "REGSWEEP_GRACE_S": "4"}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            upgrade = "from regcore.store import upgrade_database as u; import sys; u(sys.argv[1])"
            subprocess.run([sys.executable, "-c", upgrade, direct], env=env, cwd=folder, check=True)
            proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432)).start()
            proxy.latency_s = args.latency_ms / 1000
            far = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
            port = free_port()

            def regsweep(*argv: str, database: str) -> subprocess.Popen[bytes]:
                return subprocess.Popen(
                    [sys.executable, "-m", "regcore.cli", *argv],
                    env={**env, "REGSWEEP_DATABASE_URL": database},
                    cwd=folder,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )

            processes.append(regsweep("serve", "--port", str(port), database=far))
            for _ in range(args.workers):
                processes.append(regsweep("worker", "--device", "cpu", database=direct))
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the service did not answer /readyz in 120 s")
                time.sleep(0.5)
            time.sleep(5)  # the workers are up and polling
            answers, seconds = [], []
            for i in range(args.sweeps):
                started = time.perf_counter()
                response = client.post("/v1/sweeps", json={**SPEC, "name": f"race-{i}"})
                seconds.append(time.perf_counter() - started)
                answers.append(response.status_code)
            engine = sa.create_engine(direct)
            wait_until = time.monotonic() + args.timeout_s
            statuses: dict[str, str] = {}
            while time.monotonic() < wait_until:
                with engine.connect() as connection:
                    rows = connection.execute(sa.text("SELECT name, status FROM sweeps"))
                    statuses = {str(n): str(s) for n, s in rows}
                if all(s not in ("queued", "running") for s in statuses.values()):
                    break
                time.sleep(1)
            engine.dispose()
            storage = optuna.storages.RDBStorage(direct, skip_table_creation=True)
            no_baseline = 0
            for sweep, status in statuses.items():
                if status != "completed":
                    continue
                trials = optuna.load_study(study_name=sweep, storage=storage).trials
                baseline = [t for t in trials if t.user_attrs.get("baseline")]
                if [t.state for t in baseline] != [optuna.trial.TrialState.COMPLETE]:
                    no_baseline += 1
            storage.engine.dispose()
            client.close()
            proxy.close()
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return {
        "checkout": str(checkout),
        "sweeps": args.sweeps,
        "answered_201": answers.count(201),
        "failed": sum(s == "failed" for s in statuses.values()),
        "not_ended": sum(s in ("queued", "running") for s in statuses.values()),
        "completed_without_baseline": no_baseline,
        "submit_ms_median": 1000 * statistics.median(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=80)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    parser.add_argument("--before", type=Path, help="another checkout, measured in the same run")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "REGSWEEP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/submission_race.json")
    args = parser.parse_args()
    checkouts = [ROOT] + ([args.before.resolve()] if args.before else [])
    results = [run(checkout, args) for checkout in checkouts]
    print(
        f"{args.sweeps} sweeps, one at a time; the service's database {args.latency_ms:g} ms "
        f"away; {args.workers} workers polling; load average {os.getloadavg()[0]:.1f}"
    )
    header = ("checkout", "201", "failed", "not ended", "no baseline", "submit ms")
    print(" | ".join(header))
    for r in results:
        cells = (
            r["checkout"],
            r["answered_201"],
            r["failed"],
            r["not_ended"],
            r["completed_without_baseline"],
            f"{r['submit_ms_median']:.0f}",
        )
        print(" | ".join(str(c) for c in cells))
    if len(results) == 2:
        this, before = results
        ratio = this["submit_ms_median"] / before["submit_ms_median"]
        print(f"submit time, this checkout ÷ before: {ratio:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    args.out.write_text(json.dumps({"args": settings, "results": results}, indent=2))


if __name__ == "__main__":
    main()
