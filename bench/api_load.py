"""Latency and throughput of the REST API under concurrent clients, per database engine.

For each engine (``sqlite``: a temporary file; ``postgresql``: a scratch database created on
``postgresql://postgres@127.0.0.1:5432`` and dropped at the end) this creates the tables
(``regsweep db upgrade``), starts a real ``regsweep serve`` subprocess on a free loopback port
with authentication off, waits for ``GET /readyz``, pre-creates a few sweeps (each given
``--trials`` finished trials), and then drives
it with ``--concurrency`` asyncio clients sharing one ``httpx.AsyncClient`` pool:

* ``read``: ``--reads`` requests ``GET /v1/sweeps/{id}``, cycling over the pre-created ids;
* ``write``: ``--writes`` requests ``POST /v1/sweeps`` of new, uniquely named sweeps;
* ``read every P s``: the same clients, each reading a sweep every ``--poll-s`` seconds
  (``--poll-rounds`` times), as dashboards and ``regsweep status --watch`` poll: latency at
  a steady offered load (``concurrency / poll_s`` req/s), where the phases above measure
  saturation.

Each request's latency is measured client-side (send to full response body). The server is
stopped with SIGTERM at the end and the temporary database removed.

How to read the table: ``p50``/``p99``/``max`` are per-request latencies in milliseconds,
with ``--concurrency`` requests in flight, so they include queueing inside the server (a
single uvicorn process) — they are what a client sees under that load, not the cost of one
request alone: with clients that send the next request as soon as the last returns, the
mean latency is ``concurrency / throughput`` (Little's law), whatever the server does.
``req/s`` is requests divided by the phase's wall time. ``errors`` counts non-2xx answers
and transport failures (it should be 0). After the table the target
"reads p99 < 50 ms" is checked per engine. The load generator runs on the same machine as
the server and the database, so on a small machine (2 cores) the three compete for the CPU;
other processes on it also skew the numbers.

    python bench/api_load.py                          # both engines, 2000 reads, 500 writes
    python bench/api_load.py --engines sqlite --reads 200 --writes 50   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "results" / "api_load.json"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PRECREATED = 20
READ_P99_TARGET_MS = 50.0
READY_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
# Wide enough for the whole table when piped to a file (rich then defaults to 80 columns).
console = Console(width=None if sys.stdout.isatty() else 120)
# (method, path, JSON body or None)
Call = tuple[str, str, dict[str, Any] | None]


@dataclass
class PhaseResult:
    engine: str
    operation: str
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    req_per_s: float
    errors: int
    # What the errors were: "HTTP 503" or an exception's class name → count.
    error_kinds: dict[str, int]


def spec(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "workload": {"name": "sparse_regression"},
        "search_space": {"l1": {"low": 1e-4, "high": 1e-1, "log": True}, "l2": 0.0},
        "budget": {"n_trials": 5},
    }


def fill_studies(url: str, names: list[str], n: int) -> None:
    """Give each pre-created sweep ``n`` finished trials, as workers leave them, so a read
    costs what it costs on a sweep under way (Optuna's own tables, written directly)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url)
    distribution = optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        for i in range(n):
            l1 = 1e-4 * 1.1**i
            study.add_trial(
                optuna.trial.create_trial(
                    params={"l1": l1},
                    distributions={"l1": distribution},
                    value=1.0 / (1 + i),
                    user_attrs={"method": "proximal", "l1": l1, "l2": 0.0, "sparsity": 0.5},
                )
            )
    storage.engine.dispose()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@contextlib.contextmanager
def scratch_database(engine: str) -> Iterator[str]:
    """A URL to an empty database of that engine, removed on exit."""
    if engine == "sqlite":
        with tempfile.TemporaryDirectory(prefix="regsweep-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    from sqlalchemy import create_engine, text

    name = f"regsweep_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextlib.contextmanager
def running_server(database_url: str, log_path: Path) -> Iterator[str]:
    """``regsweep serve`` on a free loopback port; yields its base URL; SIGTERM on exit."""
    env = {k: v for k, v in os.environ.items() if k != "REGSWEEP_API_TOKENS"}
    env["REGSWEEP_DATABASE_URL"] = database_url
    cli = [sys.executable, "-m", "regcore.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, proc)
            yield base
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"regsweep serve exited with {proc.returncode} before ready")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/readyz", timeout=2.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"regsweep serve not ready within {READY_TIMEOUT_S:.0f} s")


async def run_phase(
    client: httpx.AsyncClient,
    requests: list[Call],
    concurrency: int,
) -> tuple[list[float], dict[str, int], float]:
    """Send every call with ``concurrency`` workers: latencies (s), error kinds, wall time (s)."""
    queue: asyncio.Queue[Call] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def worker() -> None:
        while True:
            try:
                method, path, body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await timed(client, (method, path, body), latencies, errors)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


async def timed(
    client: httpx.AsyncClient, call: Call, latencies: list[float], errors: dict[str, int]
) -> None:
    """Send one request; add its latency, and its error kind if it failed."""
    method, path, body = call
    start = time.perf_counter()
    try:
        response = await client.request(method, path, json=body)
        kind = None if response.is_success else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        kind = type(exc).__name__
    latencies.append(time.perf_counter() - start)
    if kind is not None:
        errors[kind] = errors.get(kind, 0) + 1


async def run_paced(
    client: httpx.AsyncClient, paths: list[str], clients: int, period_s: float, rounds: int
) -> tuple[list[float], dict[str, int], float]:
    """``clients`` clients, each sending ``GET path`` every ``period_s`` (start times spread
    over one period), ``rounds`` times: latency at a steady offered load, not saturation."""
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def one(index: int) -> None:
        next_at = time.perf_counter() + period_s * index / clients
        for _ in range(rounds):
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += period_s
            await timed(client, ("GET", paths[index % len(paths)], None), latencies, errors)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(clients)))
    return latencies, errors, time.perf_counter() - start


def summarize(
    engine: str, operation: str, latencies: list[float], errors: dict[str, int], wall_s: float
) -> PhaseResult:
    ms = [x * 1000 for x in latencies]
    return PhaseResult(
        engine=engine,
        operation=operation,
        requests=len(ms),
        p50_ms=statistics.median(ms),
        p99_ms=percentile(ms, 99),
        max_ms=max(ms),
        req_per_s=len(ms) / wall_s,
        errors=sum(errors.values()),
        error_kinds=errors,
    )


async def load(base: str, url: str, engine: str, args: argparse.Namespace) -> list[PhaseResult]:
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    tag = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        ids: list[str] = []
        for i in range(PRECREATED):
            response = await client.post("/v1/sweeps", json=spec(f"bench-{tag}-pre-{i}"))
            response.raise_for_status()
            ids.append(str(response.json()["id"]))
        names = [f"bench-{tag}-pre-{i}" for i in range(PRECREATED)]
        await asyncio.to_thread(fill_studies, url, names, args.trials)
        # Warm-up (untimed): open the pool's connections and the server's code paths.
        warm: list[Call] = [
            ("GET", f"/v1/sweeps/{ids[i % len(ids)]}", None) for i in range(args.concurrency)
        ]
        await run_phase(client, warm, args.concurrency)

        reads: list[Call] = [
            ("GET", f"/v1/sweeps/{ids[i % len(ids)]}", None) for i in range(args.reads)
        ]
        writes: list[Call] = [
            ("POST", "/v1/sweeps", spec(f"bench-{tag}-w-{i}")) for i in range(args.writes)
        ]
        results = []
        for operation, batch in (("read", reads), ("write", writes)):
            if batch:
                latencies, errors, wall = await run_phase(client, batch, args.concurrency)
                results.append(summarize(engine, operation, latencies, errors, wall))
        if args.poll_rounds:
            paths = [f"/v1/sweeps/{i}" for i in ids]
            paced = await run_paced(client, paths, args.concurrency, args.poll_s, args.poll_rounds)
            results.append(summarize(engine, f"read every {args.poll_s:g} s", *paced))
        return results


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reads", type=int, default=2000, help="GET /v1/sweeps/{id} requests")
    parser.add_argument("--writes", type=int, default=500, help="POST /v1/sweeps requests")
    parser.add_argument("--concurrency", type=int, default=50, help="clients in flight")
    parser.add_argument(
        "--trials", type=int, default=50, help="finished trials in each pre-created sweep"
    )
    parser.add_argument(
        "--poll-s", type=float, default=0.5, help="paced phase: each client reads this often"
    )
    parser.add_argument(
        "--poll-rounds", type=int, default=40, help="paced phase: reads per client (0: skip)"
    )
    parser.add_argument(
        "--engines", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.reads < 0 or args.writes < 0:
        parser.error("--concurrency must be ≥ 1 and --reads/--writes ≥ 0")

    info = machine_info()
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    results: list[PhaseResult] = []
    for engine in args.engines:
        console.print(f"[bold]{engine}[/bold]: starting regsweep serve …")
        with (
            scratch_database(engine) as url,
            tempfile.NamedTemporaryFile(prefix=f"regsweep-serve-{engine}-", suffix=".log") as log,
            running_server(url, Path(log.name)) as base,
        ):
            results.extend(asyncio.run(load(base, url, engine, args)))

    table = Table(title=f"regsweep API load ({args.concurrency} concurrent clients, loopback)")
    for column in ("engine", "operation", "requests", "p50 ms", "p99 ms", "max ms", "req/s"):
        left = column in ("engine", "operation")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    table.add_column("errors", justify="right")
    for r in results:
        table.add_row(
            r.engine,
            r.operation,
            str(r.requests),
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.max_ms:.1f}",
            f"{r.req_per_s:.0f}",
            str(r.errors),
        )
    console.print(table)
    for r in results:
        if r.errors:
            console.print(f"[red]{r.engine} {r.operation} errors:[/red] {r.error_kinds}")

    targets: dict[str, bool] = {}
    for r in results:
        if r.operation.startswith("read"):
            met = r.p99_ms < READ_P99_TARGET_MS
            targets[f"{r.engine} {r.operation}"] = met
            verdict = "[green]met[/green]" if met else "[red]NOT met[/red]"
            console.print(
                f"{r.engine} {r.operation}: p99 < {READ_P99_TARGET_MS:.0f} ms: {verdict} "
                f"(p99 {r.p99_ms:.1f} ms)"
            )

    if hasattr(os, "getloadavg"):
        info["loadavg_at_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": [Path(sys.executable).name, *sys.argv],
        "date": started,
        "machine": info,
        "settings": {
            "reads": args.reads,
            "writes": args.writes,
            "concurrency": args.concurrency,
            "poll_s": args.poll_s,
            "poll_rounds": args.poll_rounds,
            "engines": args.engines,
            "precreated_sweeps": PRECREATED,
            "trials_per_sweep": args.trials,
        },
        "target": {"reads_p99_ms_below": READ_P99_TARGET_MS, "met": targets},
        "results": [asdict(r) for r in results],
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0 if all(r.errors == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
