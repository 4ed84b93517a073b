"""A worker's memory while it runs a built-in MLP trial: peak and final RSS of the worker
process that ``regsweep run`` starts.

    python bench/worker_memory.py                          # this checkout, 3 rounds (~2 min)
    python bench/worker_memory.py --other /path/to/checkout   # and another, interleaved

Each round runs ``regsweep run`` on a fresh SQLite database with the README's network
(examples/digits.yaml's digits_mlp 64-512-512-10 on 150 images, batch 32, Adam) for
``--trials`` trials of ``--epochs`` epochs (TPE, no pruner, no confirmation), once with
single trials and once as a population (``--population``), and samples the worker process
(the child of ``regsweep run``) every 0.1 s from ``/proc``: ``VmHWM`` (the peak resident set
the kernel recorded), ``VmRSS`` and ``RssAnon`` (what is the process's own, not shared
files) at the last sample before it exits. ``--other``: the same rounds with another
checkout's modules (``PYTHONPATH``), interleaved with this one's. The medians are printed;
JSON to ``--out``. The machine may be busy: RSS does not depend on the load.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_MIB = 380


def spec(*, trials: int, epochs: int, population: int) -> dict[str, Any]:
    return {
        "name": "memory",
        "workload": {"name": "digits_mlp", "params": {"hidden": [512, 512], "train_size": 150}},
        "search_space": {
            "l1": {"low": 1e-6, "high": 1e-2, "log": True},
            "l2": {"low": 1e-6, "high": 1e-1, "log": True},
            "method": ["decoupled", "proximal"],
        },
        "optimizer": {"name": "adam", "lr": 2e-3},
        "training": {"epochs": epochs, "batch_size": 32, "device": "cpu"},
        "sampler": {"name": "tpe", "seed": 0},
        "budget": {"n_trials": trials},
        "execution": {"population": population},
        "confirm": False,
    }


def _status(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon"):
                values[key] = int(rest.split()[0]) // 1024  # kB → MiB
    return values


def _children(pid: int) -> list[int]:
    """The worker processes whose parent is ``pid`` (``/proc/*/stat``'s 4th field)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) != pid:
            continue
        with contextlib.suppress(OSError):  # a worker, not multiprocessing's resource tracker
            if b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                found.append(int(stat.parent.name))
    return sorted(found)


def measure(checkout: Path, body: dict[str, Any]) -> dict[str, int]:
    """One ``regsweep run`` of ``body`` with ``checkout``'s modules: its worker's memory."""
    with tempfile.TemporaryDirectory() as folder:
        spec_file = Path(folder) / "spec.json"
        spec_file.write_text(json.dumps(body))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env |= {"PYTHONPATH": str(checkout), "REGSWEEP_DATABASE_URL": f"sqlite:///{folder}/m.db"}
        command = [sys.executable, "-m", "regcore.cli", "run", str(spec_file)]
        run = subprocess.Popen(command, env=env, cwd=folder, stdout=subprocess.DEVNULL)
        last: dict[str, int] = {}
        while run.poll() is None:
            try:
                workers = _children(run.pid)
                if workers:
                    last = _status(workers[0])
            except (FileNotFoundError, ProcessLookupError):
                pass  # it exited between the listing and the read
            time.sleep(0.1)
        if run.returncode != 0:
            raise RuntimeError(f"regsweep run exited {run.returncode} ({checkout})")
    if not last:
        raise RuntimeError("the worker process was never seen")
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--other", type=Path, help="another checkout, measured interleaved")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "worker_memory.json"
    )
    args = parser.parse_args()
    for option in ("rounds", "trials", "epochs", "population"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be >= 1, but got {getattr(args, option)}")
    checkouts = {"this": ROOT} | ({"other": args.other.resolve()} if args.other else {})
    kinds = {"single trials": 1, f"population {args.population}": args.population}
    samples: dict[tuple[str, str], list[dict[str, int]]] = {}
    for round_ in range(args.rounds):
        for name, checkout in checkouts.items():
            for kind, k in kinds.items():
                body = spec(trials=args.trials, epochs=args.epochs, population=k)
                sample = measure(checkout, body)
                samples.setdefault((name, kind), []).append(sample)
                print(f"round {round_ + 1} {name} {kind}: {sample}", flush=True)
    print(
        f"\n{'checkout':<8} {'trials':<16} {'peak RSS MiB':>13} {'RSS at end':>11} {'RssAnon':>8}"
    )
    rows = []
    for (name, kind), found in samples.items():
        row = {
            "checkout": str(checkouts[name]),
            "kind": kind,
            **{k: statistics.median(s[k] for s in found) for k in ("VmHWM", "VmRSS", "RssAnon")},
            "samples": found,
        }
        rows.append(row)
        print(
            f"{name:<8} {kind:<16} {row['VmHWM']:>13.0f} {row['VmRSS']:>11.0f} "
            f"{row['RssAnon']:>8.0f}"
        )
    print(f"target: peak ≤ {TARGET_MIB} MiB for a worker running a built-in MLP trial")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rounds": args.rounds, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
