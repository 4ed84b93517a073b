"""Optuna's storage under N processes, straight to PostgreSQL or through Optuna's gRPC proxy.

    python bench/storage_route.py                       # N = 8, 25, 50; both routes (~6 min)
    python bench/storage_route.py --workers 8 --trials 300 --routes proxy

The proxy route needs grpcio and protobuf (``pip install grpcio protobuf``), which regsweep
itself does not depend on.

The question (issue 18): do workers through ``optuna.storages.run_grpc_proxy_server`` /
``GrpcStorageProxy`` scale past what direct connections do? For each N and route, on a
scratch PostgreSQL database (created on ``--postgres``, dropped after), N processes loop
``ask`` → three ``suggest_float`` → ``tell`` on one study (random sampler: the storage is
measured, not a sampler) until ``--trials`` trials are complete (trial numbers guard the
budget, exactly):

- ``direct``: each process its own ``RDBStorage`` with a pool of 2 and no overflow
  (``regcore.store.create_storage``), as a regsweep worker holds it;
- ``proxy``: one ``run_grpc_proxy_server`` process on the database (its storage cached, as
  Optuna advises, on a pool of ``--proxy-pool``; ``--proxy-threads`` gRPC threads), each of
  the N processes a ``GrpcStorageProxy``.

Columns: ``trials/s`` (after every process's first trial, to the last), ``× N=8`` (÷ the
route's rate at N = 8, else its smallest N), ``ask``/``tell`` p50 and p99 ms (per call, in
the processes), ``conns`` (most connections to the scratch database at once), and CPU per
trial in ms: the PostgreSQL server's processes (``server``), the proxy's (``proxy``: one
Python process, so ``1000 / proxy`` bounds the trials/s one proxy serves). The machine's
cores are shared by all of them: the load average is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna
import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from api_load import free_port, percentile  # noqa: E402
from scale import scratch_database  # noqa: E402
from throughput import POSTGRES_ADMIN  # noqa: E402

ROUTES = ("direct", "proxy")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def child(route: str, target: str, study_name: str, n_trials: int, out: Path) -> None:
    """One of the N processes (``--child``): ask, suggest, tell until the budget is used."""
    from regcore.store import create_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage: optuna.storages.BaseStorage
    if route == "direct":
        storage = create_storage(target, pool_size=2, max_overflow=0)
    else:
        host, port = target.rsplit(":", 1)
        storage = optuna.storages.GrpcStorageProxy(host=host, port=int(port))
        storage.wait_server_ready(timeout=60)
    study = optuna.load_study(
        study_name=study_name, storage=storage, sampler=optuna.samplers.RandomSampler()
    )
    asks, tells, ends = [], [], []
    while True:
        started = time.perf_counter()
        trial = study.ask()
        asks.append(time.perf_counter() - started)
        if trial.number >= n_trials:  # the budget is used: this one never runs
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        value = sum(trial.suggest_float(name, -1.0, 1.0) ** 2 for name in ("a", "b", "c"))
        started = time.perf_counter()
        study.tell(trial, value)
        tells.append(time.perf_counter() - started)
        ends.append(time.time())
    out.write_text(json.dumps({"asks": asks, "tells": tells, "ends": ends}))


def serve(url: str, port: int, pool: int, threads: int) -> None:
    """The proxy (``--serve``): Optuna's gRPC server on the database, until SIGTERM."""
    from concurrent.futures import ThreadPoolExecutor

    from regcore.store import create_storage

    storage = optuna.storages.get_storage(create_storage(url, pool_size=pool, max_overflow=0))
    pool_executor = ThreadPoolExecutor(max_workers=threads)
    optuna.storages.run_grpc_proxy_server(
        storage, host="127.0.0.1", port=port, thread_pool=pool_executor
    )


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def postgres_pids() -> list[int]:
    """The database server's processes on this machine (its backends come and go)."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() in ("postgres", "postmaster"):
                found.append(int(comm.parent.name))
    return found


class Connections:
    """The most connections to ``database`` at once, sampled every 0.1 s on a thread."""

    def __init__(self, admin_url: str, database: str) -> None:
        self.admin_url, self.database, self.most = admin_url, database, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        engine = sa.create_engine(self.admin_url, poolclass=sa.pool.NullPool)
        query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d")
        with engine.connect() as connection:
            while not self.stop.wait(0.1):
                self.most = max(self.most, connection.execute(query, {"d": self.database}).one()[0])
                connection.commit()
        engine.dispose()


@dataclass
class Row:
    route: str
    workers: int
    trials: int
    trials_per_s: float
    ask_ms: tuple[float, float]
    tell_ms: tuple[float, float]
    conns: int
    server_cpu_ms: float  # PostgreSQL's processes, per trial
    proxy_cpu_ms: float | None  # the proxy's process, per trial
    load: float
    errors: list[str]


@contextlib.contextmanager
def proxy_running(url: str, args: argparse.Namespace, log: Path) -> Iterator[tuple[str, int]]:
    """The proxy process: its address (``host:port``) and pid."""
    port = free_port()
    command = [sys.executable, __file__, "--serve", url, str(port)]
    command += ["--proxy-pool", str(args.proxy_pool), "--proxy-threads", str(args.proxy_threads)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=_env())
    try:
        yield f"127.0.0.1:{port}", process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def run_one(route: str, n: int, args: argparse.Namespace, folder: Path) -> Row:
    with scratch_database("postgresql", args.postgres) as url:
        from regcore.store import create_storage

        storage = create_storage(url, pool_size=1)
        name = f"route-{uuid.uuid4().hex[:8]}"
        optuna.create_study(study_name=name, storage=storage)
        storage.engine.dispose()
        database = sa.make_url(url).database
        assert database is not None
        connections = Connections(args.postgres, database)
        connections.thread.start()
        with contextlib.ExitStack() as stack:
            target, proxy_pid = url, None
            if route == "proxy":
                target, proxy_pid = stack.enter_context(
                    proxy_running(url, args, folder / f"proxy-{n}.log")
                )
            server_cpu = cpu_seconds(postgres_pids())
            proxy_cpu = cpu_seconds([proxy_pid]) if proxy_pid else 0.0
            outs = [folder / f"{route}-{n}-{i}.json" for i in range(n)]
            command = [sys.executable, __file__, "--child", route, target, name, str(args.trials)]
            children = [
                subprocess.Popen(
                    [*command, str(out)],
                    stdout=(folder / f"{out.stem}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                    env=_env(),
                )
                for out in outs
            ]
            codes = [c.wait(timeout=1800) for c in children]
            load = os.getloadavg()[0]
            server_cpu = cpu_seconds(postgres_pids()) - server_cpu
            proxy_cpu = cpu_seconds([proxy_pid]) - proxy_cpu if proxy_pid else 0.0
        connections.stop.set()
        connections.thread.join()
        check = create_storage(url, pool_size=1)
        complete = len(
            optuna.load_study(study_name=name, storage=check).get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
        )
        check.engine.dispose()
    errors = [f"process {i}: exit {code}" for i, code in enumerate(codes) if code]
    if complete != args.trials:
        errors.append(f"{complete} trials complete, not {args.trials}")
    found = [json.loads(out.read_text()) for out in outs if out.exists()]
    asks = [x for f in found for x in f["asks"]]
    tells = [x for f in found for x in f["tells"]]
    firsts = [f["ends"][0] for f in found if f["ends"]]
    ends = sorted(e for f in found for e in f["ends"])
    warmed = max(firsts) if firsts else 0.0
    steady = [e for e in ends if e > warmed]
    rate = len(steady) / (steady[-1] - warmed) if len(steady) > 1 else float("nan")
    return Row(
        route=route,
        workers=n,
        trials=complete,
        trials_per_s=rate,
        ask_ms=(1e3 * percentile(asks, 50), 1e3 * percentile(asks, 99)),
        tell_ms=(1e3 * percentile(tells, 50), 1e3 * percentile(tells, 99)),
        conns=connections.most,
        server_cpu_ms=1e3 * server_cpu / max(complete, 1),
        proxy_cpu_ms=1e3 * proxy_cpu / max(complete, 1) if route == "proxy" else None,
        load=load,
        errors=errors,
    )


def table(rows: list[Row]) -> str:
    reference: dict[str, float] = {}
    for r in sorted(rows, key=lambda r: (r.workers != 8, r.workers)):
        reference.setdefault(r.route, r.trials_per_s)
    head = "route   N  trials  trials/s  × N=8  ask p50/p99 ms  tell p50/p99 ms  conns"
    lines = [head + "  server ms/trial  proxy ms/trial  load  errors"]
    for r in rows:
        proxy = "—" if r.proxy_cpu_ms is None else f"{r.proxy_cpu_ms:.1f}"
        lines.append(
            f"{r.route:6} {r.workers:3} {r.trials:7} {r.trials_per_s:9.1f} "
            f"{r.trials_per_s / reference[r.route]:6.2f} "
            f"{r.ask_ms[0]:7.1f}/{r.ask_ms[1]:<7.1f} {r.tell_ms[0]:8.1f}/{r.tell_ms[1]:<7.1f} "
            f"{r.conns:5} {r.server_cpu_ms:16.1f} {proxy:>15} {r.load:5.1f}  "
            f"{'; '.join(r.errors) or 0}"
        )
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        route, target, name, n_trials, out = sys.argv[2:7]
        child(route, target, name, int(n_trials), Path(out))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, nargs="+", default=[8, 25, 50])
    parser.add_argument("--routes", nargs="+", choices=ROUTES, default=list(ROUTES))
    parser.add_argument("--trials", type=int, default=600, help="complete trials per point")
    parser.add_argument("--proxy-pool", type=int, default=4, help="the proxy's connections")
    parser.add_argument("--proxy-threads", type=int, default=10, help="the proxy's gRPC threads")
    parser.add_argument("--postgres", default=POSTGRES_ADMIN, help="the server's admin URL")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/storage_route.json")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.proxy_pool, args.proxy_threads)
        return
    load_before = os.getloadavg()
    print(f"load before: {load_before}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="regsweep-route-") as tmp:
        for n in args.workers:
            for route in args.routes:  # side by side at each N, under the same load
                rows.append(run_one(route, n, args, Path(tmp)))
                print(f"{route} × {n}: {rows[-1].trials_per_s:.1f} trials/s", flush=True)
    print(table(rows))
    print(f"load before: {load_before}; after: {os.getloadavg()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": " ".join(["python", *sys.argv]),
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                "optuna": optuna.__version__,
                "load": {"before": load_before, "after": os.getloadavg()},
                "rows": [asdict(r) for r in rows],
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
