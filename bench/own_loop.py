"""Your own model: what the child process costs a training function, and the built-in loop's step.

A. Per-trial overhead of a training function run in the worker's child process
(``regcore.worker.functions.FunctionRunner``) against calling it in-process. The function is trivial
(``bench_trivial``, registered by this module when the child imports it as ``bench.own_loop``):
``--reports`` epochs, each sleeping (``--busy``: spinning) ``--trial-s / --reports`` seconds,
then ``ctx.report`` (so every report's round trip to the worker is counted). The worker's side
answers ``go`` at once (no Optuna, no database): this is the process machinery alone.
Variants, interleaved round by round (the order rotates):

- ``in-process``: the same steps as the child (plug-in lookup, params, ``TrialContext`` with a
  no-op report, seed, call), in this process;
- ``child, reused``: one ``FunctionRunner`` for every round, after its first (warm) trial;
- ``child, fresh``: a new ``FunctionRunner`` per trial: spawn, ``import torch``, regcore, the
  plug-in, then the trial (what the next trial pays after a crash).

``child, first trial`` is the reused runner's first trial (one sample). Overhead is the
per-round difference to ``in-process``; % is of the in-process trial (target: reused ≤ 5 %).

B. The built-in loop's step time on digits (the README's main job: ``digits_mlp`` hidden
[512, 512], train_size 150, batch 32, Adam lr 1e-3, method ``fused`` λ₁ = 1e-4, λ₂ = 1e-3, CPU)
through ``regcore.worker.training.train_workload``, for the tensor path of this tree, the DataLoader
path of this tree (the same tensors as ``Datasets`` of ``TensorDataset``, ``num_workers`` 0),
and the tensor path of a baseline revision (default: the commit before the loop changed),
checked out with ``git worktree add`` into a temporary directory (removed afterwards). Each
run is a subprocess of this script (``--measure tensor|loader``) with its tree first on
PYTHONPATH and ``--threads`` torch threads; the variants are interleaved round by round.
``step ms`` is ``TrainResult.median_step_ms`` (the timer around zero_grad … optimizer step;
this tree's loop takes the batch before the timer starts, the baseline's gathers it inside);
``epoch ms`` is the median time between ``on_epoch`` calls (batches, steps, evaluation,
metrics: what a trial waits for). Bands are p25–p75 over the rounds (ratios: of the
per-round ratios).

    python bench/own_loop.py                      # both parts, ~3½ minutes on 2 CPU cores
    python bench/own_loop.py --quick              # smoke test, about a minute
    python bench/own_loop.py --part loop --repeats 5 --baseline 799a304
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # this module's top level must import in the baseline tree too (--measure)
    from rich.table import Table

    from regcore.worker.function_process import FunctionCall, Verdict
    from regcore.worker.functions import FunctionRunner
    from regcore.workloads import TrialContext, Workload

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "bench.own_loop"  # the name the child imports this module by (ROOT on sys.path)
WORKLOAD = "bench_trivial"
TARGET_PCT = 5.0  # the issue's: a reused child adds ≤ 5 % to a 1-second trial

# Part B: the README's main job (examples/digits.yaml, `regsweep demo`).
DIGITS_PARAMS: dict[str, Any] = {"hidden": [512, 512], "train_size": 150}
BATCH_SIZE = 32
LR = 1e-3
METHOD = "fused"
L1 = 1e-4
L2 = 1e-3
LOOP_VARIANTS: tuple[tuple[str, str], ...] = (
    ("baseline", "tensor"),
    ("current", "tensor"),
    ("current", "loader"),
)


# -- part A: the trivial training function ------------------------------------------------------


def _spend(seconds: float, busy: bool) -> None:
    if not busy:
        time.sleep(seconds)
        return
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


def trivial_trial(ctx: TrialContext) -> dict[str, float]:
    """``ctx.epochs`` epochs of ``trial_s / epochs`` seconds each, a report after each."""
    per_epoch = float(ctx.params["trial_s"]) / ctx.epochs
    busy = bool(ctx.params["busy"])
    for epoch in range(ctx.epochs):
        _spend(per_epoch, busy)
        ctx.report(epoch, {"val_loss": 1.0 / (epoch + 1)})
    return {"val_loss": 1.0 / ctx.epochs}


# Registered only under the plug-in name: the spawned child also runs this file's top level as
# `__mp_main__` before it imports `bench.own_loop`, and a second registration of the same name
# would be refused.
if __name__ == PLUGIN:
    from regcore.workloads import training_function

    training_function(name=WORKLOAD, metrics=("val_loss",))(trivial_trial)


def make_call(number: int, *, trial_s: float, reports: int, busy: bool) -> FunctionCall:
    from regcore.worker.function_process import FunctionCall

    return FunctionCall(
        workload=WORKLOAD,
        plugins=(PLUGIN,),
        l1=L1,
        l2=L2,
        method=METHOD,
        lr=LR,
        epochs=reports,
        seed=number,
        device="cpu",
        params={"trial_s": trial_s, "busy": busy},
        data_dir=None,
        number=number,
    )


def _no_report(_epoch: int, _metrics: dict[str, float]) -> None:
    return None


def _never() -> bool:
    return False


def _go(_epoch: int, _metrics: dict[str, float]) -> Verdict:
    return "go"


def run_in_process(call: FunctionCall) -> float:
    """Seconds for ``call`` done the child's way (``regcore.worker.function_process._run``) here."""
    import torch

    from regcore.worker.device import resolve_device
    from regcore.workloads import TrainingFunction, TrialContext, get_workload, load_plugin_modules

    started = time.perf_counter()
    load_plugin_modules(call.plugins)
    function = get_workload(call.workload)
    assert isinstance(function, TrainingFunction), f"{call.workload} is no training function"
    params = function.Params.model_validate(call.params).model_dump(mode="json")
    ctx = TrialContext(
        l1=call.l1,
        l2=call.l2,
        method=call.method,
        lr=call.lr,
        epochs=call.epochs,
        seed=call.seed,
        device=resolve_device(call.device),
        params=params,
        data_dir=call.data_dir,
        number=call.number,
        regularize=call.regularize,
        _report=_no_report,
        _should_stop=_never,
    )
    torch.manual_seed(call.seed)
    metrics = {str(k): float(v) for k, v in function(ctx).items()}
    elapsed = time.perf_counter() - started
    if "val_loss" not in metrics or len(ctx.history) != call.epochs:
        raise RuntimeError(f"in-process trial went wrong: {metrics}, {len(ctx.history)} reports")
    return elapsed


def run_in_child(runner: FunctionRunner, call: FunctionCall) -> float:
    """Seconds for ``runner.run(call)``, as the worker calls it (reports answered ``go``)."""
    started = time.perf_counter()
    outcome = runner.run(call, on_report=_go, should_stop=_never, grace_s=30.0)
    elapsed = time.perf_counter() - started
    if outcome.kind != "done" or len(outcome.history) != call.epochs:
        raise RuntimeError(f"child trial ended {outcome.kind}: {outcome.reason}")
    return elapsed


@dataclass(frozen=True, kw_only=True)
class Band:
    """Median and p25–p75 of some samples."""

    median: float
    p25: float
    p75: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Band:
        if len(values) < 2:
            return cls(median=values[0], p25=values[0], p75=values[0], n=len(values))
        p25, median, p75 = statistics.quantiles(values, n=4, method="inclusive")
        return cls(median=median, p25=p25, p75=p75, n=len(values))

    def text(self, fmt: str = ".1f") -> str:
        if self.n < 2:
            return f"{self.median:{fmt}}"
        return f"{self.median:{fmt}} [dim]{self.p25:{fmt}}–{self.p75:{fmt}}[/]"


def measure_overhead(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    from regcore.worker.functions import FunctionRunner

    options = {"trial_s": args.trial_s, "reports": args.reports, "busy": args.busy}
    number = iter(range(1_000_000))

    run_in_process(make_call(next(number), **options))  # imports the plug-in here: untimed
    reused = FunctionRunner(threads=args.threads)
    try:
        first = run_in_child(reused, make_call(next(number), **options))
        log(f"A: first trial in a new child {first * 1e3:.0f} ms (start included)")

        def fresh(call: FunctionCall) -> float:
            runner = FunctionRunner(threads=args.threads)
            try:
                return run_in_child(runner, call)
            finally:
                runner.close()  # not timed: the crashed child is gone already

        variants: dict[str, Callable[[FunctionCall], float]] = {
            "in-process": run_in_process,
            "child, reused": lambda call: run_in_child(reused, call),
            "child, fresh": fresh,
        }
        names = list(variants)
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(args.trials):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(variants[name](make_call(next(number), **options)))
            log(
                f"A: round {r + 1}/{args.trials}: "
                + ", ".join(f"{n} {times[n][-1] * 1e3:.0f} ms" for n in names)
            )
    finally:
        reused.close()

    base = times["in-process"]
    trial_ms = statistics.median(base) * 1e3
    rows: dict[str, Any] = {}
    for name in names:
        overhead = [(t - b) * 1e3 for t, b in zip(times[name], base, strict=True)]
        rows[name] = {
            "trial_ms": asdict(Band.of([t * 1e3 for t in times[name]])),
            "overhead_ms": asdict(Band.of(overhead)),
            "overhead_pct": statistics.median(overhead) / trial_ms * 100,
            "ratio": asdict(Band.of([t / b for t, b in zip(times[name], base, strict=True)])),
            "samples_s": times[name],
        }
    first_overhead = first * 1e3 - trial_ms
    rows["child, first trial"] = {
        "trial_ms": asdict(Band.of([first * 1e3])),
        "overhead_ms": asdict(Band.of([first_overhead])),
        "overhead_pct": first_overhead / trial_ms * 100,
        "ratio": asdict(Band.of([first * 1e3 / trial_ms])),
        "samples_s": [first],
    }
    reused_pct = rows["child, reused"]["overhead_pct"]
    return {
        "trial_s": args.trial_s,
        "reports": args.reports,
        "work": "busy" if args.busy else "sleep",
        "trials": args.trials,
        "threads": args.threads,
        "variants": rows,
        "target_pct": TARGET_PCT,
        "target_met": reused_pct <= TARGET_PCT,
    }


def overhead_table(result: dict[str, Any]) -> Table:
    from rich.table import Table

    work = f"{result['work']} {result['trial_s']:g} s, {result['reports']} reports"
    table = Table(
        title=f"A. Training function per trial: child process vs in-process ({work}; "
        "median, p25–p75 over rounds)"
    )
    for column in ("variant", "trial ms", "overhead ms", "% of trial", "÷ in-process"):
        table.add_column(column, justify="left" if column == "variant" else "right", no_wrap=True)
    order = ("in-process", "child, reused", "child, first trial", "child, fresh")
    for name in order:
        row = result["variants"][name]
        pct = f"{row['overhead_pct']:+.2f} %"
        if name == "child, reused":
            met = result["target_met"]
            mark = f" {'✓' if met else '✗'} ≤ {TARGET_PCT:g} %"
            pct = f"[{'green' if met else 'red'}]{pct}{mark}[/]"
        ratio = Band(**row["ratio"]).text(".3f")
        if name == "in-process":
            overhead, pct, ratio = "—", "—", "1"
        else:
            overhead = Band(**row["overhead_ms"]).text()
        table.add_row(name, Band(**row["trial_ms"]).text(), overhead, pct, ratio)
    return table


# -- part B: the built-in loop, one run per subprocess ------------------------------------------


def loader_workload(inner: Workload[Any]) -> Workload[Any]:
    """``inner`` with its tensors handed over as ``Datasets`` (the DataLoader path)."""
    from torch import nn
    from torch.utils.data import TensorDataset

    from regcore.workloads import Dataset, Datasets, Workload

    class AsDatasets(Workload[Any]):
        name = inner.name
        task = inner.task
        Params = inner.Params
        metrics = inner.metrics
        maximize = inner.maximize

        def load_data(self, *, seed: int) -> Datasets:
            data = inner.load_data(seed=seed)
            assert isinstance(data, Dataset)
            return Datasets(
                train=TensorDataset(data.x_train, data.y_train),
                val=TensorDataset(data.x_val, data.y_val),
            )

        def build_model(self, *, seed: int) -> nn.Module:
            return inner.build_model(seed=seed)

    return AsDatasets(params=inner.params, data_dir=inner.data_dir)


def measure_loop(path: str, *, epochs: int, threads: int, seed: int) -> dict[str, Any]:
    """One ``train_workload`` run of the digits job (``--measure``), with whichever tree's
    modules come first on PYTHONPATH."""
    import torch

    torch.set_num_threads(threads)
    from regcore.workloads import build_workload

    # The tree is the working directory (run_measure); one from before the one import
    # namespace has a top-level worker package, and no regcore/worker.
    one_namespace = (Path.cwd() / "regcore" / "worker").exists()
    training = importlib.import_module(
        "regcore.worker.training" if one_namespace else "worker.training"
    )

    workload = build_workload("digits_mlp", DIGITS_PARAMS)
    if path == "loader":
        workload = loader_workload(workload)
    # Only arguments both trees' TrainConfig take (the baseline's has no scheduler, …).
    config = training.TrainConfig(
        epochs=epochs, batch_size=BATCH_SIZE, lr=LR, seed=seed, device="cpu"
    )
    marks: list[float] = []
    started = time.perf_counter()
    result = training.train_workload(
        workload,
        l1=L1,
        l2=L2,
        method=METHOD,
        config=config,
        on_epoch=lambda _epoch, _metrics: marks.append(time.perf_counter()),
    )
    epoch_s = [b - a for a, b in zip([started, *marks[:-1]], marks, strict=True)][1:]
    return {
        "path": path,
        "median_step_ms": result.median_step_ms,
        "median_epoch_ms": statistics.median(epoch_s) * 1e3 if epoch_s else float("nan"),
        "steps": len(result.step_times_s),
        "epochs": result.epochs_run,
        "val_loss": result.metrics["val_loss"],
        "training_module": training.__file__,
        "threads": torch.get_num_threads(),
    }


def _git(*args: str) -> str:
    environment = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never touch the shared index
    done = subprocess.run(
        ["git", *args], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def resolve_baseline(revision: str) -> tuple[str, str]:
    """(commit, why) of ``revision``; ``auto``: the commit before the loop changed."""
    if revision != "auto":
        return _git("rev-parse", "--verify", f"{revision}^{{commit}}"), f"--baseline {revision}"
    loop = "worker/training.py"
    if _git("show", f"HEAD:{loop}") != (ROOT / loop).read_text().strip():
        why = f"HEAD: {loop} is changed in the working tree"
        return _git("rev-parse", "--verify", "HEAD^{commit}"), why
    last = _git("log", "-1", "--format=%H", "--", loop)
    why = f"the parent of {last[:7]}, the last commit that changed {loop}"
    return _git("rev-parse", "--verify", f"{last}^^{{commit}}"), why


def run_measure(tree: Path, path: str, args: argparse.Namespace) -> dict[str, Any]:
    threads = str(args.threads)
    environment = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
    }
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", path]
    command += ["--epochs", str(args.epochs), "--threads", threads, "--seed", str(args.seed)]
    done = subprocess.run(command, cwd=tree, env=environment, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} in {tree} failed:\n{done.stderr[-3000:]}")
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    module = Path(measured["training_module"]).resolve()
    if not module.is_relative_to(tree.resolve()):
        raise RuntimeError(f"the run in {tree} imported regcore.worker.training from {module}")
    return measured


def measure_loops(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    commit, why = resolve_baseline(args.baseline)
    log(f"B: baseline {commit[:10]} ({why})")
    scratch = Path(tempfile.mkdtemp(prefix="regsweep-own-loop-"))
    worktree = scratch / "baseline"
    _git("worktree", "add", "--detach", str(worktree), commit)
    trees = {"baseline": worktree, "current": ROOT}
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {v: [] for v in LOOP_VARIANTS}
    try:
        for r in range(args.repeats):
            shift = r % len(LOOP_VARIANTS)
            for tree, path in LOOP_VARIANTS[shift:] + LOOP_VARIANTS[:shift]:
                runs[tree, path].append(run_measure(trees[tree], path, args))
            log(
                f"B: round {r + 1}/{args.repeats}: "
                + ", ".join(
                    f"{t} {p} {runs[t, p][-1]['median_step_ms']:.3f} ms/step "
                    f"{runs[t, p][-1]['median_epoch_ms']:.1f} ms/epoch"
                    for t, p in LOOP_VARIANTS
                )
            )
    finally:
        _git("worktree", "remove", "--force", str(worktree))
        shutil.rmtree(scratch, ignore_errors=True)

    def series(variant: tuple[str, str], key: str) -> list[float]:
        return [float(run[key]) for run in runs[variant]]

    def ratios(top: tuple[str, str], bottom: tuple[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("median_step_ms", "median_epoch_ms"):
            a, b = series(top, key), series(bottom, key)
            band = Band.of([x / y for x, y in zip(a, b, strict=True)])
            out[key] = {
                "of_medians": statistics.median(a) / statistics.median(b),
                "per_round": asdict(band),
                "within_noise": band.p25 <= 1.0 <= band.p75,
            }
        return out

    baseline, tensor, loader = LOOP_VARIANTS
    return {
        "baseline": {"revision": args.baseline, "commit": commit, "why": why},
        "job": {
            "workload": "digits_mlp",
            "params": DIGITS_PARAMS,
            "batch_size": BATCH_SIZE,
            "optimizer": "adam",
            "lr": LR,
            "method": METHOD,
            "l1": L1,
            "l2": L2,
            "epochs": args.epochs,
            "device": "cpu",
        },
        "repeats": args.repeats,
        "threads": args.threads,
        "variants": {
            f"{t} {p}": {
                "step_ms": asdict(Band.of(series((t, p), "median_step_ms"))),
                "epoch_ms": asdict(Band.of(series((t, p), "median_epoch_ms"))),
                "runs": runs[t, p],
            }
            for t, p in LOOP_VARIANTS
        },
        "ratios": {
            "current tensor / baseline tensor": ratios(tensor, baseline),
            "current loader / current tensor": ratios(loader, tensor),
        },
    }


def loop_tables(result: dict[str, Any]) -> tuple[Table, Table]:
    from rich.table import Table

    job = result["job"]
    times = Table(
        title=f"B. Built-in loop, digits_mlp 64-512-512-10, {job['params']['train_size']} "
        f"samples, batch {job['batch_size']}, Adam, {job['method']} ({job['epochs']} epochs, "
        f"{result['threads']} thread(s); median, p25–p75 over {result['repeats']} runs)"
    )
    for column in ("variant", "step ms", "epoch ms"):
        times.add_column(column, justify="left" if column == "variant" else "right", no_wrap=True)
    for name, row in result["variants"].items():
        label = f"{name} ({result['baseline']['commit'][:7]})" if name.startswith("base") else name
        times.add_row(label, Band(**row["step_ms"]).text(".3f"), Band(**row["epoch_ms"]).text())

    ratio_table = Table(title="B. Ratios (of the medians; p25–p75 of the per-round ratios)")
    for column in ("ratio", "step", "epoch"):
        ratio_table.add_column(column, justify="left" if column == "ratio" else "right")
    for name, row in result["ratios"].items():
        cells = [name]
        for key in ("median_step_ms", "median_epoch_ms"):
            r = row[key]
            band = Band(**r["per_round"])
            cell = f"{r['of_medians']:.3f} [dim]{band.p25:.3f}–{band.p75:.3f}[/]"
            if name.startswith("current tensor"):
                cell += " [green]within noise[/]" if r["within_noise"] else " [yellow]changed[/]"
            cells.append(cell)
        ratio_table.add_row(*cells)
    return times, ratio_table


# -- command line -------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--part", choices=["all", "overhead", "loop"], default="all")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 20 epochs: a smoke test")
    parser.add_argument("--trials", type=int, default=10, help="A: rounds of the 3 variants")
    parser.add_argument("--trial-s", type=float, default=1.0, help="A: the trial's length")
    parser.add_argument("--reports", type=int, default=10, help="A: ctx.report calls per trial")
    parser.add_argument("--busy", action="store_true", help="A: spin instead of sleeping")
    parser.add_argument("--repeats", type=int, default=7, help="B: rounds of the 3 variants")
    parser.add_argument("--epochs", type=int, default=60, help="B: epochs per run (5 steps)")
    parser.add_argument(
        "--baseline", default="auto", help="B: git revision (auto: before the loop changed)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads, every variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "own_loop.json")
    parser.add_argument("--measure", choices=["tensor", "loader"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.repeats, args.epochs = 3, 3, 20
    for name in ("trials", "reports", "repeats", "epochs", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, but got {getattr(args, name)}")
    if args.epochs < 2:
        parser.error("--epochs must be >= 2 (the first epoch is not timed as an epoch)")
    if args.trial_s <= 0:
        parser.error(f"--trial-s must be > 0, but got {args.trial_s}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.measure is not None:
        measured = measure_loop(
            args.measure, epochs=args.epochs, threads=args.threads, seed=args.seed
        )
        print(json.dumps(measured))
        return 0

    if str(ROOT) not in sys.path:  # the child imports this module as `bench.own_loop`
        sys.path.insert(0, str(ROOT))
    import torch
    from rich.console import Console

    torch.set_num_threads(args.threads)
    console = Console()
    if not console.is_terminal:  # piped into a file or `tee`: keep each table row on one line
        console = Console(width=160)
    env = environment()
    command = " ".join(["python", "bench/own_loop.py", *sys.argv[1:]])
    console.print(f"[bold]{command}[/]  (torch {env['torch']}, {args.threads} thread(s))")

    started = time.perf_counter()
    document: dict[str, Any] = {**env, "args": {k: str(v) for k, v in vars(args).items()}}
    if args.part in ("all", "overhead"):
        document["overhead"] = measure_overhead(args, console.print)
    if args.part in ("all", "loop"):
        document["loop"] = measure_loops(args, console.print)
    document["wall_s"] = time.perf_counter() - started
    console.print(f"measured in {document['wall_s']:.0f} s")

    console.print(f"\n[bold]{command}[/]")
    if "overhead" in document:
        console.print(overhead_table(document["overhead"]))
    if "loop" in document:
        for table in loop_tables(document["loop"]):
            console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
