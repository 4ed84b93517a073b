"""Finished trials per second: regsweep's workers against bare Optuna, same work, same database.

For each engine (SQLite file, PostgreSQL scratch database) and each worker count N, two runs
of the same sweep (a trivial workload, so the database and the bookkeeping dominate):

- ``regsweep``: the sweep is queued in the store, then N ``regsweep worker`` processes claim
  and run its trials until it is ``completed`` (exact budget, heartbeats, study lock);
- ``bare``: N processes each run ``study.optimize`` with ``MaxTrialsCallback`` on the same
  objective (``train_workload`` with the same spec), the usual way to parallelize Optuna.

Both include starting N Python processes (torch's import is most of that). Reading the
table: ``ratio`` is regsweep's trials/s ÷ bare Optuna's; ≥ 1 means regsweep's per-trial
overhead is no larger. Bare Optuna overshoots the budget by up to N − 1 trials
(``MaxTrialsCallback`` checks only after a trial ends), so its trials/s counts the trials it
actually finished.

    python bench/throughput.py                       # 1, 2, 4 workers; SQLite and PostgreSQL
    python bench/throughput.py --workers 1 2 --engines sqlite --trials 16
"""

from __future__ import annotations

import argparse
import datetime
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
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from regcore.spec import SweepSpec, parse_spec
from regcore.store import (
    create_engine_for,
    create_storage,
    get_sweep,
    insert_sweep,
    upgrade_database,
)
from regcore.sweeps.studies import open_study

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SPEC: dict[str, Any] = {
    "workload": {"name": "sparse_regression", "params": {"n_samples": 100, "n_features": 10}},
    # One method per class: the cost probe (once per sweep where a class lists several
    # methods, ~1.5 s here) is a cost per sweep, not the per-trial overhead measured here.
    "search_space": {
        "l1": {"low": 1e-4, "high": 1e-1, "log": True},
        "l2": 0.0,
        "method": ["loss", "decoupled", "proximal"],
    },
    "training": {"epochs": 1, "batch_size": 100, "device": "cpu"},
    "sampler": {"name": "random", "seed": 0},
    "pruner": {"name": "none"},
}
ROOT = Path(__file__).resolve().parents[1]


def make_spec(name: str, n_trials: int) -> SweepSpec:
    return parse_spec({**SPEC, "name": name, "budget": {"n_trials": n_trials}})


def bare_worker(url: str, name: str, n_trials: int) -> None:
    """One bare-Optuna process (run as ``--bare-worker``)."""
    from regcore.spec.suggest import suggest
    from regcore.worker.training import train_config, train_workload
    from regcore.workloads import build_workload

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = make_spec(name, n_trials)
    workload = build_workload(spec.workload.name, spec.workload.params)

    def objective(trial: optuna.Trial) -> float:
        point = suggest(trial, spec)
        config = train_config(spec, lr=point.lr)
        result = train_workload(
            workload, l1=point.l1, l2=point.l2, method=point.method, config=config
        )
        return result.metrics["val_loss"]

    study = optuna.load_study(study_name=name, storage=create_storage(url))
    callback = optuna.study.MaxTrialsCallback(n_trials, states=(optuna.trial.TrialState.COMPLETE,))
    study.optimize(objective, n_trials=n_trials, callbacks=[callback])


def wait_for(condition: Any, timeout: float) -> None:
    tick, deadline = threading.Event(), time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout} s")
        tick.wait(0.1)


def child_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "REGSWEEP_DATABASE_URL": url,
        "OMP_NUM_THREADS": "1",
        "REGSWEEP_HEARTBEAT_S": "2",
        "PYTHONPATH": str(ROOT),
    }


def run_regsweep(url: str, workers: int, n_trials: int) -> tuple[float, int]:
    upgrade_database(url)
    engine = create_engine_for(url)
    spec = make_spec(f"tp-{uuid.uuid4().hex[:8]}", n_trials)
    row = insert_sweep(engine, spec_json=spec.to_json_dict(), name=spec.name)
    open_study(spec, create_storage(url), user_attrs={"sweep_id": row.id})
    command = [sys.executable, "-m", "regcore.cli", "worker", "--device", "cpu"]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, env=child_env(url)) for _ in range(workers)]
    try:
        wait_for(lambda: get_sweep(engine, row.id).status == "completed", 600)
        elapsed = time.perf_counter() - started
    finally:
        for p in processes:
            p.send_signal(signal.SIGTERM)
        for p in processes:
            p.wait(timeout=60)
        engine.dispose()
    return elapsed, n_trials


def run_bare(url: str, workers: int, n_trials: int) -> tuple[float, int]:
    name = f"bare-{uuid.uuid4().hex[:8]}"
    storage = create_storage(url)
    optuna.create_study(study_name=name, storage=storage)
    command = [sys.executable, __file__, "--bare-worker", url, name, str(n_trials)]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, env=child_env(url)) for _ in range(workers)]
    for p in processes:
        p.wait(timeout=600)
    elapsed = time.perf_counter() - started
    study = optuna.load_study(study_name=name, storage=storage)
    done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    return elapsed, done


def database_urls(engines: list[str], workdir: Path) -> dict[str, Any]:
    """A fresh database per run: a factory per engine."""
    counter = iter(range(10_000))
    made: list[str] = []
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")

    def sqlite() -> str:
        return f"sqlite:///{workdir / f'tp{next(counter)}.db'}"

    def postgresql() -> str:
        name = f"regsweep_bench_{uuid.uuid4().hex[:10]}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return sa.make_url(POSTGRES_ADMIN).set(database=name).render_as_string(False)

    def drop() -> None:
        with admin.connect() as connection:
            for name in made:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    factories = {"sqlite": sqlite, "postgresql": postgresql}
    return {"make": {e: factories[e] for e in engines}, "drop": drop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--engines", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--trials", type=int, default=40, help="n_trials of each sweep")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/throughput.json")
    parser.add_argument("--bare-worker", nargs=3, metavar=("URL", "STUDY", "N"))
    args = parser.parse_args()
    if args.bare_worker:
        url, name, n = args.bare_worker
        bare_worker(url, name, int(n))
        return

    console = Console()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        dbs = database_urls(args.engines, Path(tmp))
        try:
            for engine in args.engines:
                for workers in args.workers:
                    ours_s, ours_n = run_regsweep(dbs["make"][engine](), workers, args.trials)
                    bare_s, bare_n = run_bare(dbs["make"][engine](), workers, args.trials)
                    row = {
                        "engine": engine,
                        "workers": workers,
                        "regsweep_trials_per_s": ours_n / ours_s,
                        "bare_trials_per_s": bare_n / bare_s,
                        "regsweep_trials": ours_n,
                        "bare_trials": bare_n,
                        "regsweep_s": ours_s,
                        "bare_s": bare_s,
                    }
                    row["ratio"] = row["regsweep_trials_per_s"] / row["bare_trials_per_s"]
                    rows.append(row)
                    console.print(
                        f"{engine} × {workers}: regsweep {ours_n} in {ours_s:.1f} s, "
                        f"bare {bare_n} in {bare_s:.1f} s"
                    )
        finally:
            dbs["drop"]()

    table = Table(title="Finished trials per second (trivial workload; process start included)")
    for column in ("engine", "workers", "regsweep", "bare optuna", "ratio", "bare overshoot"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["engine"],
            str(r["workers"]),
            f"{r['regsweep_trials_per_s']:.2f}",
            f"{r['bare_trials_per_s']:.2f}",
            f"{r['ratio']:.2f}",
            f"{r['bare_trials'] - args.trials:+d}",
        )
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": " ".join(["python", *sys.argv]),
                "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                "optuna": optuna.__version__,
                "results": rows,
            },
            indent=2,
        )
    )
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
