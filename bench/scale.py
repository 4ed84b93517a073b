"""Many workers on one database: throughput, claim latency, connections, memory and errors.

    python bench/scale.py --quick        # PostgreSQL × 1, 4 and SQLite × 4, 16 trials (~2 min)
    python bench/scale.py                # PostgreSQL × 1, 8, 25, 50 and SQLite × 8
    python bench/scale.py --postgres postgresql://postgres@127.0.0.1:5433/postgres --logs DIR
    python bench/scale.py --engines postgresql --workers 8 25 50 --before /tmp/old-checkout

``--before DIR`` measures another checkout (its service and workers: ``PYTHONPATH`` set to
it) at each point right after this one, so both rows share the machine's load of the moment.

For each engine and worker count N (and checkout), on a scratch database (PostgreSQL: created
on ``--postgres`` and dropped at the end; SQLite: a temporary file):

1. ``regsweep serve`` (authentication off, a free loopback port);
2. N ``regsweep worker --device cpu`` processes, until every one alive is registered
   (``GET /v1/workers``): ``start s``, mostly N imports of torch. Workers beat every
   ``--heartbeat-s`` (2 s, as bench/throughput.py; the default deployment beats every 10 s);
3. one sweep (bench/throughput.py's trivial ``sparse_regression``: the database and the
   bookkeeping dominate) submitted over REST, and a client polling ``GET /v1/sweeps/{id}``
   every ``--poll-s`` s until it reads a final status; then SIGTERM to the workers. A sweep
   with no trial finished for ``--stall-s`` is given up as ``stalled`` (an error).

A thread samples ``pg_stat_activity`` (connections to the scratch database) every 0.1 s and
the workers' process trees (``/proc``) every 0.5 s. N workers that would not fit in
``MemAvailable`` are replaced by the largest N that does (``N (asked M)``), and the workers
are killed should ``MemAvailable`` fall under 0.75 GiB: the machine may be shared.

Columns:

- ``trials/s``: trials finished after every worker finished its first one (which pays for lazy
  imports; ``warm-up s``) ÷ the time from then to the last one's end: the steady rate.
  ``× N=8``: ÷ the same engine's and checkout's rate at N = 8 (the smallest N without 8).
- ``claim p50/p99 ms``: claim latency, measured from the trials' times: each trial is
  attributed to its worker by the worker's log line ``trials [k] started``, and a claim runs
  from one of its trials' ``datetime_complete`` (``tell``) to its next one's ``datetime_start``
  (``study.ask``): the whole round between two trials (sweep claim, stale trials, study lock,
  budget count, ``ask``). ``claim mean ms``: the workers' own counters, Σ ``claim_seconds`` ÷
  Σ ``claims`` (``GET /v1/workers``; first claims included). ``trial p50 ms``: start to
  ``tell``. ``commits/trial``: the database's ``xact_commit`` over the sweep ÷ trials.
- ``poll p50/p99 ms``: the polling client's latency.
- ``conns peak``: most connections to the scratch database at once; ``service``: those left
  once the workers have exited, the client still polling; ``/worker``: (peak − service) ÷ N;
  ``max/worker``: the most one worker's process tree held (its sockets to the server).
- ``RSS``/``private`` MiB: the workers' median ``VmRSS``/``RssAnon`` (process tree) at the
  sweep's end, so after their first trials; ``private`` is what each worker adds (shared
  libraries count once); ``peak``: the largest ``VmHWM``.
- ``errors``: worker exits ≠ 0, ``ERROR``/``Traceback`` lines in worker and service logs (the
  first ones printed), client errors (HTTP or transport), ``FAIL`` trials, sweeps refused, failed
  or stalled. ``locked``: "database is locked" in any log or poll answer.
- ``budget``: ``exact`` when the finished trials (``regcore.store.count_trials``) equal
  ``n_trials``, no more ever started, and no poll saw more running + finished.

Targets (issues 13 and 18), checked for this checkout's rows at the end: zero errors, exact
budgets, no "locked", connections ≤ 2 per worker (``/worker`` and ``max/worker``), claim p99
under 1 s, and PostgreSQL's trials/s at every N at least 0.9 × its rate at N = 8. Service,
workers, database server and client share the machine's cores: the load average is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import optuna
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from regcore.store import count_trials, create_engine_for, create_storage

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# bench/ is no package (mypy names its files by their bare names): its siblings by theirs.
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from api_load import percentile, running_server  # noqa: E402
from throughput import POSTGRES_ADMIN, SPEC, child_env, wait_for  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 180)
LOCKED = "database is locked"
STARTED = re.compile(r"trials \[([\d, ]+)\] started")
LOW_MEMORY_KIB = 768 * 1024
# Sampled on one connection opened before the workers start: a new one may be refused.
ACTIVITY = sa.text(
    "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = :d),"
    " (SELECT xact_commit FROM pg_stat_database WHERE datname = :d)"
)


def available_kib() -> int:
    meminfo = Path("/proc/meminfo").read_text()
    return int(re.findall(r"^MemAvailable:\s+(\d+)", meminfo, re.M)[0])


def server_sockets(port: int) -> set[str]:
    """``socket:[INODE]`` of every established TCP connection to ``port`` on this host."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[2].endswith(f":{port:04X}") and parts[3] == "01":
                    found.add(f"socket:[{parts[9]}]")
    return found


def children() -> dict[int, list[int]]:
    """Every process's children (from ``/proc/*/stat``)."""
    found: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            found.setdefault(ppid, []).append(int(stat.parent.name))
    return found


def tree(pid: int, kids: dict[int, list[int]]) -> list[int]:
    """``pid`` and its descendants."""
    return [pid, *(d for k in kids.get(pid, []) for d in tree(k, kids))]


def memory_kib(pid: int) -> dict[str, int]:
    text = Path(f"/proc/{pid}/status").read_text()
    return {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}


@dataclass
class Sampler:
    """Connections to ``database`` every 0.1 s; the workers' process trees (memory, sockets
    to the server) every 0.5 s. ``run`` is a thread's target, until ``stop``; it kills the
    workers if memory runs low."""

    admin_url: str
    database: str | None  # None: SQLite, no connection counts
    pids: list[int] = field(default_factory=list)
    connections: list[tuple[float, int]] = field(default_factory=list)
    commits: int = 0  # the database's xact_commit, last sampled
    per_worker_max: int = 0
    peak_hwm_kib: int = 0
    memory: dict[int, tuple[int, int]] = field(default_factory=dict)  # pid → tree's RSS, anon
    low_memory: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with contextlib.ExitStack() as stack:
            connection = None
            if self.database is not None:
                admin = sa.create_engine(self.admin_url, poolclass=sa.pool.NullPool)
                stack.callback(admin.dispose)
                connection = stack.enter_context(admin.connect())
            for tick in itertools.count():
                if self.stop.wait(0.1):
                    return
                if connection is not None:
                    n, self.commits = connection.execute(ACTIVITY, {"d": self.database}).one()
                    connection.commit()  # a fresh snapshot of the statistics each time
                    self.connections.append((time.monotonic(), n))
                if tick % 5 == 0:
                    self._processes()

    def _processes(self) -> None:
        if available_kib() < LOW_MEMORY_KIB and not self.low_memory.is_set():
            self.low_memory.set()
            for pid in self.pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        port = sa.make_url(self.admin_url).port or 5432
        sockets = server_sockets(port) if self.database else set()
        kids = children()
        for worker in list(self.pids):
            rss = anon = held = 0
            for pid in tree(worker, kids):
                with contextlib.suppress(OSError, KeyError):  # exited meanwhile (or a zombie)
                    kib = memory_kib(pid)
                    self.peak_hwm_kib = max(self.peak_hwm_kib, kib["VmHWM"])
                    rss, anon = rss + kib["VmRSS"], anon + kib["RssAnon"]
                    if sockets:
                        fds = Path(f"/proc/{pid}/fd").iterdir()
                        held += sum(os.readlink(fd) in sockets for fd in fds)
            if rss:
                self.memory[worker] = (rss, anon)
            self.per_worker_max = max(self.per_worker_max, held)

    def median_mib(self, which: int) -> float:
        values = [m[which] for m in self.memory.values()]
        return statistics.median(values) / 1024 if values else float("nan")

    def peak(self, since: float = 0.0) -> int:
        return max((n for t, n in self.connections if t >= since), default=0)


@dataclass
class Poller:
    """``GET /v1/sweeps/{id}`` every ``period_s`` until ``stop``, as a dashboard polls
    (``run`` is a thread's target); ``final`` is set once it reads a final status."""

    base: str
    sweep_id: str
    period_s: float
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    locked: int = 0
    max_used: int = 0  # the most trials seen running or finished at once
    finished: int = 0
    progressed: float = field(default_factory=time.monotonic)  # when `finished` last grew
    status: str = "queued"
    error_text: str | None = None  # the sweep's error, once it has failed
    final: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=30.0) as client:
            while True:
                self.poll(client)
                if self.stop.wait(self.period_s):
                    return

    def poll(self, client: httpx.Client) -> None:
        started = time.perf_counter()
        try:
            response = client.get(f"/v1/sweeps/{self.sweep_id}")
        except httpx.HTTPError as exc:
            self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
            self.locked += LOCKED in str(exc)
            return
        self.latencies.append(time.perf_counter() - started)
        self.locked += response.text.count(LOCKED)
        if not response.is_success:
            kind = f"HTTP {response.status_code}"
            self.errors[kind] = self.errors.get(kind, 0) + 1
            return
        body = response.json()
        n = body["trials"]
        finished = n["COMPLETE"] + n["PRUNED"] + n["FAIL"]
        self.max_used = max(self.max_used, n["RUNNING"] + n["COMPLETE"] + n["PRUNED"])
        if finished > self.finished:
            self.finished, self.progressed = finished, time.monotonic()
        self.status, self.error_text = body["status"], body.get("error")
        if self.status not in ("queued", "running"):
            self.final.set()


@dataclass
class Result:
    engine: str
    workers: int
    checkout: str  # "this", or "before" (--before)
    up: int  # workers registered when the sweep was submitted
    n_trials: int
    status: str
    load: float  # the machine's 1-minute load average as the sweep ended
    start_s: float
    warmup_s: float
    trials_per_s: float
    gap_ms: tuple[float, float]  # p50, p99
    claim_mean_ms: float
    trial_p50_ms: float
    commits_per_trial: float | None
    poll_ms: tuple[float, float]  # p50, p99
    conns: tuple[int, int, int] | None  # peak, the service's, one worker's most; None: SQLite
    rss_mib: tuple[float, float, float]  # median VmRSS, median RssAnon, largest VmHWM
    finished: int
    started: int
    max_used_polled: int
    errors: dict[str, int]
    error_lines: list[str]  # the sweeps' failures, workers' exit codes ≠ 0, the logs' errors
    locked: int
    asked: int = 0  # the N asked for, when memory allowed fewer workers

    @property
    def exact(self) -> bool:
        n = self.n_trials
        return self.finished == n and self.started <= n and self.max_used_polled <= n


@contextlib.contextmanager
def scratch_database(engine: str, admin_url: str) -> Iterator[str]:
    """A URL to an empty database of that engine, removed on exit."""
    if engine == "sqlite":
        with tempfile.TemporaryDirectory(prefix="regsweep-scale-db-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'scale.db'}"
        return
    name = f"regsweep_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def pythonpath(checkout: Path) -> Iterator[None]:
    """``PYTHONPATH`` set to ``checkout`` for the processes started meanwhile (the service
    copies this process's environment)."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(checkout)
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


@contextlib.contextmanager
def workers_running(
    url: str, n: int, logs: Path, exits: list[int], heartbeat_s: float, checkout: Path = ROOT
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """N ``regsweep worker`` processes of ``checkout`` (output in ``logs/worker-I.log``). On
    exit: SIGTERM, and their exit codes (-9: killed) appended to ``exits``."""
    command = [sys.executable, "-m", "regcore.cli", "worker", "--device", "cpu"]
    env = child_env(url) | {"REGSWEEP_HEARTBEAT_S": f"{heartbeat_s:g}", "PYTHONPATH": str(checkout)}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(n):
            with (logs / f"worker-{i}.log").open("wb") as log:
                processes.append(
                    subprocess.Popen(
                        command, env=env, cwd=logs, stdout=log, stderr=subprocess.STDOUT
                    )
                )
        yield processes
    finally:
        for p in processes:
            p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                exits.append(p.wait(timeout=90))
            except subprocess.TimeoutExpired:
                p.kill()
                exits.append(p.wait())


def until(condition: Callable[[], bool], sampler: Sampler, timeout: float) -> None:
    def done() -> bool:
        if sampler.low_memory.is_set():
            raise MemoryError("MemAvailable fell under 0.75 GiB: the workers were killed")
        return condition()

    wait_for(done, timeout)


def registered(base: str) -> list[dict[str, Any]] | None:
    """``GET /v1/workers``' rows; None when the service could not answer."""
    response = httpx.get(f"{base}/v1/workers", timeout=30)
    rows: list[dict[str, Any]] | None = response.json()["data"] if response.is_success else None
    return rows


def all_up(base: str, processes: list[subprocess.Popen[bytes]]) -> bool:
    """Every worker still alive is registered (one that died starting is counted later)."""
    alive = sum(p.poll() is None for p in processes)
    if alive == 0:
        raise RuntimeError("every worker exited before registering: see their logs")
    rows = registered(base)
    return rows is not None and len(rows) >= alive


def submit(
    base: str, n_trials: int, args: argparse.Namespace, sampler: Sampler, failures: list[str]
) -> tuple[dict[str, Any], Poller]:
    """Submit the sweep and poll it until it ends or stalls (the poller goes on until its
    ``stop``); a refused submission or an unsuccessful end goes to ``failures``, and again."""
    for _ in range(3):
        spec = {**SPEC, "name": f"scale-{uuid.uuid4().hex[:8]}", "budget": {"n_trials": n_trials}}
        try:
            created = httpx.post(f"{base}/v1/sweeps", json=spec, timeout=30)
        except httpx.HTTPError as exc:
            failures.append(f"POST /v1/sweeps: {type(exc).__name__}: {exc}")
            continue
        if created.status_code != 201:
            failures.append(f"POST /v1/sweeps: HTTP {created.status_code} {created.text[:300]}")
            continue
        sweep = created.json()
        poller = Poller(base, sweep["id"], args.poll_s)
        threading.Thread(target=poller.run, daemon=True).start()

        def ended_or_stalled(p: Poller = poller) -> bool:
            return p.final.is_set() or time.monotonic() - p.progressed > args.stall_s

        until(ended_or_stalled, sampler, 3600)
        if poller.status == "completed":
            return sweep, poller
        if not poller.final.is_set():
            poller.status = "stalled"
            failures.append(f"sweep {sweep['id']} stalled: no trial finished in {args.stall_s} s")
            return sweep, poller
        failures.append(f"sweep {sweep['id']} ended {poller.status}: {poller.error_text}")
        poller.stop.set()
    raise RuntimeError(f"no sweep completed in 3 tries: {failures}")


def trial_figures(url: str, study_name: str, logs: list[Path]) -> dict[str, Any]:
    """From the study and the worker logs: claim gaps and trials' own times (s), warm-up (s),
    steady trials/s, trials ever started, FAIL trials."""
    storage = create_storage(url, pool_size=1)
    trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
    storage.engine.dispose()
    starts = {t.number: t.datetime_start for t in trials if t.datetime_start is not None}
    ends = {t.number: t.datetime_complete for t in trials if t.datetime_complete is not None}
    gaps, warm = [], []
    for log in logs:
        numbers = [int(n) for m in STARTED.finditer(log.read_text()) for n in m[1].split(",")]
        if numbers and numbers[0] in ends:
            warm.append(ends[numbers[0]])
        for before, after in itertools.pairwise(numbers):
            if before in ends and after in starts:
                gaps.append((starts[after] - ends[before]).total_seconds())
    figures: dict[str, Any] = {"gaps": gaps, "started": len(starts), "warmup_s": float("nan")}
    figures["own"] = [(end - starts[n]).total_seconds() for n, end in ends.items()]
    figures["failed"] = sum(t.state == optuna.trial.TrialState.FAIL for t in trials)
    figures["rate"] = 0.0
    if warm:
        warmed, last = max(warm), max(ends.values())
        figures["warmup_s"] = (warmed - min(starts.values())).total_seconds()
        steady = sum(end > warmed for end in ends.values())
        figures["rate"] = steady / max((last - warmed).total_seconds(), 1e-9)
    return figures


def scan_logs(paths: list[Path]) -> tuple[list[str], int]:
    """ERROR/Traceback lines (with their file) and "database is locked" occurrences."""
    bad, locked = [], 0
    for path in paths:
        text = path.read_text(errors="replace")
        locked += text.count(LOCKED)
        lines = text.splitlines()
        bad += [f"{path.name}: {x}" for x in lines if " ERROR " in x or x.startswith("Traceback")]
    return bad, locked


def ms(values: list[float], q: float) -> float:
    return 1e3 * percentile(values, q) if values else float("nan")


def run_one(
    engine: str, workers: int, n_trials: int, args: argparse.Namespace, checkout: str = "this"
) -> Result:
    """One row: a scratch database, the service, N workers, one sweep to its end; the code of
    ``checkout`` ("this", or "before": ``--before``)."""
    folder = ROOT if checkout == "this" else args.before
    logs = args.logs / f"{engine}-{workers}-{checkout}"
    logs.mkdir(parents=True, exist_ok=True)
    exits: list[int] = []
    failures: list[str] = []  # sweeps refused, failed or stalled
    with scratch_database(engine, args.postgres) as url:
        database = sa.make_url(url).database if engine == "postgresql" else None
        sampler = Sampler(args.postgres, database)
        sampling = threading.Thread(target=sampler.run, daemon=True)
        sampling.start()
        with pythonpath(folder), running_server(url, logs / "service.log") as base:
            launched = time.perf_counter()
            with workers_running(
                url, workers, logs, exits, args.heartbeat_s, checkout=folder
            ) as processes:
                sampler.pids = [p.pid for p in processes]
                until(lambda: all_up(base, processes), sampler, 900)
                start_s, up = time.perf_counter() - launched, len(registered(base) or [])
                before = sampler.commits
                sweep, poller = submit(base, n_trials, args, sampler, failures)
                commits, load = sampler.commits - before, os.getloadavg()[0]
                memory = (sampler.median_mib(0), sampler.median_mib(1))
                # Past a heartbeat, which publishes the claim counters: they are final.
                threading.Event().wait(args.heartbeat_s + 1.0)
                rows = registered(base) or []
            gone = time.monotonic()
            threading.Event().wait(1.5)  # the service's connections alone, the client polling
            poller.stop.set()
            sampler.stop.set()
            sampling.join()
        regs = create_engine_for(url, pool_size=1)
        finished = count_trials(regs, sweep["study_name"]).finished
        regs.dispose()
        worker_logs = [logs / f"worker-{i}.log" for i in range(workers)]
        figures = trial_figures(url, sweep["study_name"], worker_logs)
    bad, locked = scan_logs([*worker_logs, logs / "service.log"])
    claims = sum(r["claims"] for r in rows)
    return Result(
        engine=engine,
        workers=workers,
        checkout=checkout,
        up=up,
        n_trials=n_trials,
        status=poller.status,
        load=load,
        start_s=start_s,
        warmup_s=figures["warmup_s"],
        trials_per_s=figures["rate"],
        gap_ms=(ms(figures["gaps"], 50), ms(figures["gaps"], 99)),
        claim_mean_ms=1e3 * sum(r["claim_seconds"] for r in rows) / claims
        if claims
        else float("nan"),
        trial_p50_ms=ms(figures["own"], 50),
        commits_per_trial=commits / finished if database and finished else None,
        poll_ms=(ms(poller.latencies, 50), ms(poller.latencies, 99)),
        conns=(sampler.peak(), sampler.peak(gone + 0.5), sampler.per_worker_max)
        if database
        else None,
        rss_mib=(*memory, sampler.peak_hwm_kib / 1024),
        finished=finished,
        started=figures["started"],
        max_used_polled=poller.max_used,
        errors={
            "exit": sum(code != 0 for code in exits),
            "log": len(bad),
            "http": sum(poller.errors.values()),
            "FAIL": figures["failed"],
            "sweep": len(failures),
        },
        error_lines=[
            *failures,
            *(f"worker-{i}.log: exit code {code}" for i, code in enumerate(exits) if code),
            *bad[:6],
        ],
        locked=locked + poller.locked,
    )


def f1(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def per_worker(r: Result) -> float | None:
    return None if r.conns is None else (r.conns[0] - r.conns[1]) / max(r.up, 1)


def workers_cell(r: Result) -> str:
    cell = str(r.workers) if r.up == r.workers else f"{r.workers} ({r.up} up)"
    return cell if r.asked in (0, r.workers) else f"{cell} (asked {r.asked})"


SPEED: list[tuple[str, Callable[[Result], str]]] = [
    ("engine", lambda r: r.engine),
    ("code", lambda r: r.checkout),
    ("N", workers_cell),
    ("trials", lambda r: str(r.n_trials) + ("" if r.status == "completed" else f" {r.status}")),
    ("start s", lambda r: f1(r.start_s)),
    ("warm-up s", lambda r: f1(r.warmup_s)),
    ("trials/s", lambda r: f"{r.trials_per_s:.2f}"),
    ("× N=8", lambda r: "—"),  # filled in by tables()
    ("claim p50 ms", lambda r: f1(r.gap_ms[0])),
    ("claim p99 ms", lambda r: f1(r.gap_ms[1])),
    ("claim mean ms", lambda r: f1(r.claim_mean_ms)),
    ("trial p50 ms", lambda r: f1(r.trial_p50_ms)),
    ("commits/trial", lambda r: f1(r.commits_per_trial)),
    ("poll p50 ms", lambda r: f1(r.poll_ms[0])),
    ("poll p99 ms", lambda r: f1(r.poll_ms[1])),
    ("load", lambda r: f1(r.load)),
]
COST: list[tuple[str, Callable[[Result], str]]] = [
    ("engine", lambda r: r.engine),
    ("code", lambda r: r.checkout),
    ("N", workers_cell),
    ("conns peak", lambda r: "—" if r.conns is None else str(r.conns[0])),
    ("service", lambda r: "—" if r.conns is None else str(r.conns[1])),
    ("/worker", lambda r: "—" if (x := per_worker(r)) is None else f"{x:.2f}"),
    ("max/worker", lambda r: "—" if r.conns is None else str(r.conns[2])),
    ("RSS MiB", lambda r: f"{r.rss_mib[0]:.0f}"),
    ("private", lambda r: f"{r.rss_mib[1]:.0f}"),
    ("peak MiB", lambda r: f"{r.rss_mib[2]:.0f}"),
    ("errors", lambda r: ", ".join(f"{k} {v}" for k, v in r.errors.items() if v) or "0"),
    ("locked", lambda r: str(r.locked)),
    (
        "budget",
        lambda r: (
            f"{'exact' if r.exact else 'NOT exact'}: {r.finished}/{r.n_trials} finished,"
            f" {r.started} started, polled ≤ {r.max_used_polled}"
        ),
    ),
]


def reference_rates(results: list[Result]) -> dict[tuple[str, str], float]:
    """Each engine's and checkout's trials/s at N = 8 (else at its smallest N)."""
    rates: dict[tuple[str, str], float] = {}
    for r in sorted(results, key=lambda r: (r.workers != 8, r.workers)):
        rates.setdefault((r.engine, r.checkout), r.trials_per_s)
    return rates


def tables(results: list[Result]) -> list[Table]:
    reference = reference_rates(results)
    made = []
    for title, columns in (
        ("Throughput and latency (trivial workload)", SPEED),
        ("Connections, memory (MiB), errors and budget", COST),
    ):
        table = Table(title=title)
        for name, _ in columns:
            table.add_column(name, justify="right")
        for r in results:
            cells = [cell(r) for _, cell in columns]
            if columns is SPEED and reference.get((r.engine, r.checkout)):
                cells[7] = f"{r.trials_per_s / reference[(r.engine, r.checkout)]:.2f}"
            table.add_row(*cells)
        made.append(table)
    return made


def missed_targets(results: list[Result]) -> list[str]:
    """Issues 13's and 18's targets each row of this checkout misses (the service's
    connections count as its pool)."""
    missed = []
    results = [r for r in results if r.checkout == "this"]
    reference = reference_rates(results)
    for r in results:
        row = f"{r.engine} × {r.workers}"
        if any(r.errors.values()):
            missed.append(f"{row}: errors {r.errors}")
        if not r.exact:
            missed.append(f"{row}: budget not exact")
        if r.locked:
            missed.append(f"{row}: 'database is locked' × {r.locked}")
        if (x := per_worker(r)) is not None and x > 2:
            missed.append(f"{row}: {x:.2f} connections per worker (> 2)")
        if r.conns is not None and r.conns[2] > 2:
            missed.append(f"{row}: a worker held {r.conns[2]} connections (> 2)")
        if not r.gap_ms[1] < 1000:
            missed.append(f"{row}: claim p99 {r.gap_ms[1]:.0f} ms (≥ 1 s)")
        base = reference[(r.engine, r.checkout)]
        if r.engine == "postgresql" and r.workers >= 8 and r.trials_per_s < 0.9 * base:
            missed.append(
                f"{row}: {r.trials_per_s:.2f} trials/s, {r.trials_per_s / base:.2f} × N = 8's"
            )
    return missed


def fitting(n: int, worker_mib: float) -> int:
    """The most workers (≤ n) whose ``worker_mib`` each fit in MemAvailable less 1.5 GiB."""
    return min(n, int((available_kib() / 1024 - 1536) // worker_mib))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="PostgreSQL × 1, 4; SQLite × 4")
    parser.add_argument("--workers", type=int, nargs="+", help="PostgreSQL's N (1 8 25 50)")
    parser.add_argument("--engines", nargs="+", default=["postgresql", "sqlite"])
    parser.add_argument("--sqlite-workers", type=int, nargs="+", help="SQLite's N (8)")
    parser.add_argument("--trials", type=int, help="n_trials of every sweep (60 + 6·N; quick 16)")
    parser.add_argument("--poll-s", type=float, default=0.5, help="the client's polling period")
    parser.add_argument("--stall-s", type=float, default=120, help="give up a sweep this idle")
    parser.add_argument("--heartbeat-s", type=float, default=2, help="the workers' heartbeat")
    parser.add_argument("--postgres", default=POSTGRES_ADMIN, help="the server's admin URL")
    parser.add_argument("--worker-mib", type=float, default=400, help="a worker's memory, first")
    parser.add_argument("--logs", type=Path, help="keep every log here (else a temporary dir)")
    parser.add_argument("--before", type=Path, help="another checkout, measured at each point too")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/scale.json")
    args = parser.parse_args()
    args.workers = args.workers or ([1, 4] if args.quick else [1, 8, 25, 50])
    args.sqlite_workers = args.sqlite_workers or ([4] if args.quick else [8])
    args.trials = args.trials or (16 if args.quick else None)
    if args.before is not None:
        args.before = args.before.resolve()
        if not (args.before / "regcore" / "cli").is_dir():
            parser.error(f"--before must be a regsweep checkout, but got {args.before}")

    load_before = uptime()
    console.print(f"load before: {load_before}")
    if "postgresql" in args.engines:
        admin = sa.create_engine(args.postgres, poolclass=sa.pool.NullPool)
        with admin.connect() as connection:
            most = connection.execute(sa.text("SHOW max_connections")).scalar_one()
        admin.dispose()
        console.print(f"PostgreSQL at {args.postgres}: max_connections = {most}")
    results: list[Result] = []
    # Then what a worker was measured to add: its private memory, and its ~5 database backends.
    worker_mib = args.worker_mib
    with tempfile.TemporaryDirectory(prefix="regsweep-scale-") as tmp:
        args.logs = args.logs or Path(tmp)
        for engine in args.engines:
            for asked in args.sqlite_workers if engine == "sqlite" else args.workers:
                n = fitting(asked, worker_mib)
                if n < asked:
                    console.print(f"{asked} workers of ~{worker_mib:.0f} MiB do not fit: {n}")
                if n < 1 or any(r.engine == engine and r.workers == n for r in results):
                    continue
                for checkout in ("this", "before") if args.before else ("this",):
                    r = run_one(engine, n, args.trials or 60 + 6 * n, args, checkout)
                    r.asked = asked
                    results.append(r)
                    # What a worker was measured to take, the larger of the two checkouts'.
                    mib = r.rss_mib[1] + 25
                    worker_mib = mib if checkout == "this" else max(worker_mib, mib)
                    console.print(
                        f"{engine} × {n} ({checkout}): {r.finished} trials, "
                        f"{r.trials_per_s:.2f}/s, start {r.start_s:.1f} s, warm-up "
                        f"{r.warmup_s:.1f} s, {r.status}, load {r.load:.1f}"
                    )
                    for line in r.error_lines:
                        console.print(f"  {line}", style="red", highlight=False, markup=False)
    load_after = uptime()
    for table in tables(results):
        console.print(table)
    missed = missed_targets(results)
    console.print("targets: " + ("all met" if not missed else "MISSED"))
    for line in missed:
        console.print(f"  {line}", style="red", highlight=False, markup=False)
    console.print(f"load before: {load_before}\nload after:  {load_after}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": " ".join(["python", *sys.argv]),
                "before": None if args.before is None else str(args.before),
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                "load": {"before": load_before, "after": load_after},
                "optuna": optuna.__version__,
                "results": [asdict(r) | {"budget_exact": r.exact} for r in results],
                "missed_targets": missed,
            },
            indent=2,
        )
    )
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
