"""Threads per worker, and one sweep through ``regsweep run`` and through the service.

    python bench/worker_threads.py                    # both parts (~10 min on 2 loaded cores)
    python bench/worker_threads.py --parts threads    # A alone (~3 min)
    PYTHONPATH=OTHER_CHECKOUT python bench/worker_threads.py   # another checkout's workers

A. Threads. For each way of starting workers on this machine, on a fresh SQLite database:
tests/plugins/workloads.py's grid of 5 trials (``test_threads_cnn``, whose loop runs in the
worker, then ``test_threads_function``, a training function in the worker's child), each
reporting ``torch.get_num_threads()`` as read in the process that trained it. Ways: ``run
--workers 1`` and ``2``, one ``worker``, two ``worker`` started by hand (the second once the
first has registered), ``serve --with-worker``, ``worker --workers 2`` (where the checkout
has it). Printed: the counts seen (worker / child) against the cores ÷ workers share.

B. One sweep (``--trials``, digits_cnn whose sums change with the thread count, TPE seed 0,
no pruner, no confirmation) through ``run --workers 2``, ``serve`` + two ``worker`` by hand
(as a user starts them) and ``serve`` + ``worker --workers 2``: wall time (the sweep's first
trial's start to its last one's end), best value, and of the trials whose point another way
also trained (TPE's seeded start-up points), how many gave a different value.

Every process inherits this one's environment less ``OMP_NUM_THREADS`` (which would fix the
count); the load average is printed before and after. JSON: ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import optuna

from regcore.spec import parse_spec
from regcore.store import (
    create_engine_for,
    create_storage,
    get_sweep_by_name,
    list_workers,
    upgrade_database,
)
from regcore.sweeps.studies import create_sweep
from regcore.workloads import load_plugin_modules

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "tests.plugins.workloads"
WAYS = ("run-1", "run-2", "worker", "2-workers-by-hand", "serve-with-worker", "worker-workers-2")
SWEEP_WAYS = ("run-2", "serve+2-by-hand", "serve+worker-workers-2")


def threads_spec(name: str, workload: str) -> dict[str, Any]:
    own = workload == "test_threads_cnn"
    return {
        "name": name,
        "workload": {"name": workload, "params": {"train_size": 300} if own else {}},
        "search_space": {"l1": 0.0, "l2": {"choices": [1e-4, 1e-3, 1e-2, 1e-1]}, "method": "fused"},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 2, "device": "cpu"} | ({"batch_size": 64} if own else {}),
        "sampler": {"name": "grid"},
        "budget": {"n_trials": 5},
        "confirm": False,
    }


def sweep_spec(trials: int) -> dict[str, Any]:
    return {
        "name": "threads-sweep",
        "workload": {"name": "digits_cnn", "params": {"hidden": [16, 32]}},
        "search_space": {
            "l1": {"low": 1e-6, "high": 1e-2, "log": True},
            "l2": {"low": 1e-6, "high": 1e-2, "log": True},
            "method": ["decoupled", "proximal"],
        },
        "optimizer": {"name": "adam", "lr": 0.003},
        "training": {"epochs": 10, "batch_size": 64, "device": "cpu"},
        "sampler": {"name": "tpe", "seed": 0},
        "budget": {"n_trials": trials},
        "confirm": False,
    }


class Machine:
    """regsweep processes on one scratch database, as a user starts them."""

    def __init__(self, folder: Path) -> None:
        self.url = f"sqlite:///{folder / 'bench.db'}"
        self.folder = folder
        self.env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
        path = [p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p]
        self.env |= {
            "REGSWEEP_DATABASE_URL": self.url,
            "REGSWEEP_PLUGINS": PLUGIN,
            "REGSWEEP_HEARTBEAT_S": "1",
            "PYTHONPATH": os.pathsep.join(path),
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        upgrade_database(self.url)
        self.engine = create_engine_for(self.url, pool_size=1)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.folder / f"process-{len(self.processes)}.log").open("wb")
        command = [sys.executable, "-m", "regcore.cli", *args]
        process = subprocess.Popen(command, env=self.env, cwd=self.folder, stdout=log, stderr=log)
        self.processes.append(process)
        return process

    def registered(self) -> int:
        return len(list_workers(self.engine))

    def submit(self, body: dict[str, Any]) -> None:
        storage = create_storage(self.url)
        create_sweep(self.engine, storage, parse_spec(body))
        storage.remove_session()

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}; logs in {self.folder}")
            if any(p.poll() not in (None, 0) for p in self.processes):
                raise RuntimeError(f"a process failed while waiting for {what}: {self.folder}")
            time.sleep(0.5)

    def completed(self, name: str) -> bool:
        try:
            return get_sweep_by_name(self.engine, name).status == "completed"
        except Exception:
            return False

    def trials(self, name: str) -> list[optuna.trial.FrozenTrial]:
        storage = create_storage(self.url)
        study = optuna.load_study(study_name=name, storage=storage)
        trials = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
        storage.remove_session()
        return trials

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        self.engine.dispose()


def start_way(machine: Machine, way: str, spec_file: Path | None) -> None:
    """Start ``way``'s processes (``run`` ways run ``spec_file`` to its end)."""
    if way.startswith("run-"):
        assert spec_file is not None
        workers = way.split("-")[1]
        code = subprocess.call(
            [sys.executable, "-m", "regcore.cli", "run", str(spec_file), "--workers", workers],
            env=machine.env,
            cwd=machine.folder,
            stdout=subprocess.DEVNULL,
        )
        if code != 0:
            raise RuntimeError(f"regsweep run exited {code}")
        return
    if way.startswith("serve"):
        port = 18000 + os.getpid() % 1000
        machine.start("serve", "--port", str(port), *(["--with-worker"] if "with" in way else []))
        wait_http(f"http://127.0.0.1:{port}/readyz")
    if way in ("worker", "serve-with-worker"):
        if way == "worker":
            machine.start("worker", "--device", "cpu")
        machine.wait_for(lambda: machine.registered() == 1, "a worker to register")
    elif "by-hand" in way:
        machine.start("worker", "--device", "cpu")
        machine.wait_for(lambda: machine.registered() == 1, "the first worker to register")
        machine.start("worker", "--device", "cpu")
        machine.wait_for(lambda: machine.registered() == 2, "the second worker to register")
    elif "workers-2" in way:
        machine.start("worker", "--device", "cpu", "--workers", "2")
        machine.wait_for(lambda: machine.registered() == 2, "two workers to register")


def wait_http(url: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer")


def measure_threads(way: str, folder: Path) -> dict[str, Any]:
    machine = Machine(folder)
    seen: dict[str, list[int]] = {}
    try:
        for workload in ("test_threads_cnn", "test_threads_function"):
            body = threads_spec(f"threads-{workload}", workload)
            spec_file = folder / f"{workload}.json"
            spec_file.write_text(json.dumps(body))
            if way.startswith("run-"):
                start_way(machine, way, spec_file)
            else:
                if workload == "test_threads_cnn":
                    start_way(machine, way, None)
                machine.submit(body)
                name: str = body["name"]
                machine.wait_for(lambda: machine.completed(name), name)  # noqa: B023
            trials = machine.trials(body["name"])
            seen[workload] = sorted({int(t.user_attrs["torch_threads"]) for t in trials})
    finally:
        machine.close()
    return {"way": way, "worker": seen["test_threads_cnn"], "child": seen["test_threads_function"]}


def measure_sweep(way: str, folder: Path, trials: int) -> dict[str, Any]:
    machine = Machine(folder)
    body = sweep_spec(trials)
    spec_file = folder / "sweep.json"
    spec_file.write_text(json.dumps(body))
    try:
        if way == "run-2":
            start_way(machine, way, spec_file)
        else:
            start_way(
                machine, "serve+2-by-hand" if "hand" in way else "serve+worker-workers-2", None
            )
            machine.submit(body)
            machine.wait_for(lambda: machine.completed(body["name"]), "the sweep")
        done = machine.trials(body["name"])
    finally:
        machine.close()
    start = min(t.datetime_start for t in done if t.datetime_start)
    end = max(t.datetime_complete for t in done if t.datetime_complete)
    best = min(t.value for t in done if t.value is not None)
    values = {json.dumps(t.params, sort_keys=True): t.value for t in done}
    threads = sorted({int(t.user_attrs.get("torch_threads", 0)) for t in done})
    return {
        "way": way,
        "wall_s": (end - start).total_seconds(),
        "best": best,
        "values": values,
        "threads_recorded": threads,
    }


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--parts", nargs="+", choices=["threads", "sweep"], default=["threads", "sweep"]
    )
    parser.add_argument("--ways", nargs="+", choices=WAYS, default=list(WAYS))
    parser.add_argument("--sweep-ways", nargs="+", choices=SWEEP_WAYS, default=list(SWEEP_WAYS))
    parser.add_argument("--trials", type=int, default=25, help="B: the sweep's trials")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "worker_threads.json"
    )
    args = parser.parse_args()
    if args.trials < 2:
        parser.error(f"--trials must be >= 2, but got {args.trials}")
    sys.path.append(str(ROOT))  # the plug-in's package, after PYTHONPATH's checkout
    load_plugin_modules((PLUGIN,))
    import regcore

    cores = len(os.sched_getaffinity(0))
    print(f"regcore from {Path(regcore.__file__).parent.parent}; {cores} cores; load {load()}")
    document: dict[str, Any] = {"cores": cores, "load_before": load(), "threads": [], "sweep": []}
    if "threads" in args.parts:
        print(f"\nA. threads a worker gives torch (share: cores ÷ workers = {cores} ÷ N)")
        print(f"{'way':<22} {'worker':>10} {'child':>10}")
        for way in args.ways:
            with tempfile.TemporaryDirectory() as folder:
                try:
                    row = measure_threads(way, Path(folder))
                except (RuntimeError, TimeoutError) as exc:
                    row = {"way": way, "worker": None, "child": None, "error": str(exc)}
            document["threads"].append(row)
            print(f"{way:<22} {row['worker']!s:>10} {row['child']!s:>10}  {row.get('error', '')}")
    if "sweep" in args.parts:
        print(f"\nB. one {args.trials}-trial sweep (digits_cnn, TPE seed 0) on two workers")
        rows = []
        for way in args.sweep_ways:
            with tempfile.TemporaryDirectory() as folder:
                try:
                    rows.append(measure_sweep(way, Path(folder), args.trials))
                except (RuntimeError, TimeoutError) as exc:
                    print(f"{way}: {exc}")
        reference = rows[0]["values"] if rows else {}
        print(
            f"{'way':<24} {'wall s':>8} {'best':>10} {'threads':>8} {'same points':>12} "
            f"{'differ':>7}"
        )
        for row in rows:
            shared = [p for p in row["values"] if p in reference]
            differ = sum(row["values"][p] != reference[p] for p in shared)
            row |= {"same_points": len(shared), "differ": differ}
            print(
                f"{row['way']:<24} {row['wall_s']:>8.1f} {row['best']:>10.5f} "
                f"{row['threads_recorded']!s:>8} {len(shared):>12} {differ:>7}"
            )
        document["sweep"] = rows
    document["load_after"] = load()
    print(f"\nload average after: {load()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
