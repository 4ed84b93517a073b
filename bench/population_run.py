"""Population trials through the worker: ``regsweep run`` of the same sweep trained one trial
at a time, K at a time, and with ``population: auto``; what bench/population.py measures
outside the worker, with everything a worker does per member (claims, tells, reports).

    python bench/population_run.py                           # 3 workloads × K 1, 8, auto
    python bench/population_run.py --other /path/to/checkout # and another checkout's workers
    python bench/population_run.py --workloads logreg --rounds 5

Each sweep: one method (``fused``), an 8-point λ₁ grid (``--points``, log-spaced in
[1e-5, 1e-1]; λ₂ 0), the λ = 0 baseline, ``--epochs`` epochs, no pruner, no confirmation;
``regsweep run SPEC`` (one worker, torch's threads as it gives them) on a fresh SQLite
database. Its time is the sweep's: from its start (its first claim, before ``auto`` measures
K) to its last trial's end, read from the database, so the same process start-up of every
variant (~5 s) is left out; ``run s`` is the whole command's. Workloads:

- ``logreg``: breast_cancer_logreg (30 features, 1 output), batch 64, SGD lr 0.1;
- ``sparse``: sparse_regression as examples/sparse_regression.yaml, batch 64, Adam lr 0.01;
- ``mlp``: digits_mlp 64-256-256-10 on all 1 347 training images, batch 64, Adam lr 1e-3.

The variants of a round run one after another in an order shifted by one each round; the
table gives medians over the rounds and ``÷ K=1``, the median of the per-round ratios of the
K = 1 sweep's time to the variant's (> 1: faster). ``K used``: the population the trials
recorded. ``--other``: the same sweeps with another checkout's modules (``PYTHONPATH``),
interleaved. The load average is printed: other processes on the machine slow every variant.
"""

from __future__ import annotations

import argparse
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

WORKLOADS: dict[str, dict[str, Any]] = {
    "logreg": {
        "workload": {"name": "breast_cancer_logreg"},
        "optimizer": {"name": "sgd", "lr": 0.1},
        "batch_size": 64,
    },
    "sparse": {
        "workload": {
            "name": "sparse_regression",
            "params": {"n_samples": 500, "n_features": 100, "n_informative": 10, "noise": 0.5},
        },
        "optimizer": {"name": "adam", "lr": 0.01},
        "batch_size": 64,
    },
    "mlp": {
        "workload": {"name": "digits_mlp", "params": {"hidden": [256, 256]}},
        "optimizer": {"name": "adam", "lr": 1e-3},
        "batch_size": 64,
    },
}


def spec(workload: str, population: int | str, *, points: int, epochs: int) -> dict[str, Any]:
    job = WORKLOADS[workload]
    grid = [10 ** (-5 + 4 * i / max(1, points - 1)) for i in range(points)]
    return {
        "name": f"population-{workload}",
        "workload": job["workload"],
        "search_space": {"l1": {"choices": grid}, "l2": 0.0, "method": "fused"},
        "optimizer": job["optimizer"],
        "training": {"epochs": epochs, "batch_size": job["batch_size"], "device": "cpu"},
        "sampler": {"name": "grid"},
        "pruner": {"name": "none"},
        "budget": {"n_trials": points + 1},
        "execution": {"population": population},
        "confirm": False,
    }


def run_sweep(checkout: Path, body: dict[str, Any]) -> dict[str, Any]:
    """``regsweep run`` of ``body`` with ``checkout``'s modules: its times and trials."""
    code = (
        "import json, sys, optuna\n"
        "from regcore.store import create_engine_for, create_storage, get_sweep_by_name\n"
        "url, name = sys.argv[1:]\n"
        "sweep = get_sweep_by_name(create_engine_for(url), name)\n"
        "study = optuna.load_study(study_name=name, storage=create_storage(url))\n"
        "done = [t for t in study.trials if t.datetime_complete]\n"
        "print(json.dumps({'started': sweep.started_at.timestamp(),\n"
        "  'ended': max(t.datetime_complete.timestamp() for t in done),\n"
        "  'states': sorted({t.state.name for t in study.trials}), 'trials': len(done),\n"
        "  'k': sorted({t.user_attrs.get('population', 1) for t in done})}))\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        spec_file = Path(folder) / "spec.json"
        spec_file.write_text(json.dumps(body))
        url = f"sqlite:///{folder}/p.db"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env |= {"PYTHONPATH": str(checkout), "REGSWEEP_DATABASE_URL": url}
        started = time.perf_counter()
        command = [sys.executable, "-m", "regcore.cli", "run", str(spec_file)]
        subprocess.run(command, env=env, cwd=folder, check=True, stdout=subprocess.DEVNULL)
        run_s = time.perf_counter() - started
        read = subprocess.run(
            [sys.executable, "-c", code, url, body["name"]],
            env=env,
            cwd=folder,
            check=True,
            capture_output=True,
            text=True,
        )
    found: dict[str, Any] = json.loads(read.stdout)
    return {**found, "sweep_s": found["ended"] - found["started"], "run_s": run_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--sizes", nargs="+", default=["1", "8", "auto"], help="K values or auto")
    parser.add_argument("--points", type=int, default=8, help="λ₁ grid points (trials + 1)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--other", type=Path, help="another checkout, measured interleaved")
    out = ROOT / "bench" / "results" / "population_run.json"
    parser.add_argument("--out", type=Path, default=out)
    args = parser.parse_args()
    sizes: list[int | str] = [s if s == "auto" else int(s) for s in args.sizes]
    if 1 not in sizes:
        sizes.insert(0, 1)  # the reference
    checkouts = {"this": ROOT} | ({"other": args.other.resolve()} if args.other else {})
    variants = [(c, w, k) for c in checkouts for w in args.workloads for k in sizes]
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()}", flush=True)
    samples: dict[tuple[str, str, int | str], list[dict[str, Any]]] = {}
    for round_ in range(args.rounds):
        shift = round_ % len(variants)
        for checkout, workload, k in variants[shift:] + variants[:shift]:
            body = spec(workload, k, points=args.points, epochs=args.epochs)
            sample = run_sweep(checkouts[checkout], body)
            samples.setdefault((checkout, workload, k), []).append(sample)
            print(
                f"round {round_ + 1} {checkout} {workload} K={k}: sweep {sample['sweep_s']:.1f} s, "
                f"run {sample['run_s']:.1f} s, K used {sample['k']}, {sample['states']}",
                flush=True,
            )
    print(f"\nload average after: {os.getloadavg()}")
    print(
        f"{'checkout':<8} {'workload':<8} {'K':>5} {'sweep s':>8} {'run s':>7} {'÷ K=1':>6}  K used"
    )
    rows = []
    for (checkout, workload, k), found in samples.items():
        reference = samples[(checkout, workload, 1)]
        ratios = [r["sweep_s"] / s["sweep_s"] for r, s in zip(reference, found, strict=True)]
        row = {
            "checkout": str(checkouts[checkout]),
            "workload": workload,
            "k": k,
            "sweep_s": statistics.median(s["sweep_s"] for s in found),
            "run_s": statistics.median(s["run_s"] for s in found),
            "speedup": statistics.median(ratios),
            "k_used": sorted({k for s in found for k in s["k"]}),
            "samples": found,
        }
        rows.append(row)
        print(
            f"{checkout:<8} {workload:<8} {k!s:>5} {row['sweep_s']:>8.1f} {row['run_s']:>7.1f} "
            f"{row['speedup']:>5.2f}×  {row['k_used']}"
        )
    print("target on 2 CPUs: ≥ 2× at K = 8 for tiny models (logreg, sparse), auto ≥ 1.0×")
    document = {"settings": vars(args) | {"other": str(args.other)}, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
