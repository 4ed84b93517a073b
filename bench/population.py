"""Population trials: finished trials per hour when K trials train together in one vmapped pass.

A. Throughput. For each workload and each K of ``--sizes``, the whole training of K trials
(``method`` fused, member ``i``'s λ₁ and λ₂ drawn log-uniform from [1e-5, 1e-3] with a fixed
seed, the same draws for every K; every member trained to the end: ``--epochs`` epochs, no
pruning). The clock covers everything a worker does for them but the database: building the
workload (its data), the model and the optimizer, every epoch's steps and its evaluation.

- K = 1 is the single-trial path, ``regcore.worker.training.train_workload`` (what a trial runs
  today); its sample in a round is the mean of ``--singles`` trials (members 0, 1, … of the
  draws).
- K ≥ 2 is ``regcore.worker.population.PopulationTrainer`` with K members, all added at epoch 0.

Trials per hour = K × 3600 / wall time (K = 1: 3600 / the mean trial's wall time). Every
(workload, K) is one variant; the variants are interleaved, each round in an order shifted by
one (after an untimed one-epoch warm-up of each), so drift and other processes on the machine
hit all alike. The table gives medians and the p25–p75 band over the rounds; ``÷ K=1`` is
median / median of K = 1, its band that of the per-round ratios. ``Δ val_loss`` is the
largest relative difference between a population member's final val_loss and the single
trial with the same λ (a check that both paths train the same thing; float32).

Workloads: ``digits_mlp`` as the README's main job (examples/digits.yaml: hidden [512, 512],
train_size 150, batch 32, Adam lr 1e-3) and ``sparse_regression`` as
examples/sparse_regression.yaml (its params, batch 64, Adam lr 0.01); seed 0.

B. Peak memory per variant. CUDA: ``torch.cuda.max_memory_allocated`` minus what was allocated
before the variant (the peak statistics reset first), the largest over the rounds. CPU: a fresh
subprocess per variant (``--memory-epochs`` epochs) runs it twice; before each run it resets
the kernel's peak-RSS mark (``/proc/self/clear_refs`` ← 5), after it reads ``VmHWM`` and
reports ``VmHWM`` − ``VmRSS`` before (``/proc/self/status``): how much the resident set grew at
its highest (data, model, gradients, optimizer state, activations, allocator slack). The
second run (after ``gc.collect`` and glibc's ``malloc_trim``) is the table's number; the first
includes what a process loads once (torch.optim imports torch._dynamo, sympy, … the first time
an optimizer is made: ~80 MiB). A fresh process per variant, so memory the allocator kept
from another variant is not counted as free.

C. The K = 1 step of the population's fused update against torch.optim, on
bench/regularizers.py's models and batch (its ``MODELS``, ``OPTIMIZERS``, λ₁ = 1e-5,
λ₂ = 1e-4), three variants built from the same initial weights, interleaved as there:

- ``none``: the torch optimizer, no regularization (bench/regularizers.py's ``none``);
- ``fused``: the torch optimizer with ``Regularizer(method="fused")`` attached (its ``fused``);
- ``population``: ``PopulationOptimizer`` (method fused) on a ``Stack`` of k = 1, the
  forward and backward as ``PopulationTrainer`` runs them (``vmap`` of ``functional_call``
  over the stack's ``[1, …]`` parameters).

Two timed regions, each reported as a ratio to ``none``: ``train step`` is the whole step
(zero_grad, forward, loss, backward, optimizer step: what bench/regularizers.py times, so its
ratios compare with that table's); ``optimizer step`` is the optimizer's step alone, after an
untimed forward and backward (for ``fused`` its pre-step hook included). The issue's target
(≤ 1.03×, SGD and Adam) is checked on the ``population`` train step. ``|Δw|`` is the largest
weight difference between ``fused`` and ``population`` after 3 steps from the same weights.

Torch threads: ``--threads``, else as many as torch has at the start (printed); the memory
subprocesses get the same. Only torch, pydantic, scikit-learn, rich and modules of regcore and
worker that import neither optuna nor sqlalchemy are loaded (the last line says so).

    python bench/population.py                                  # CPU, ~6 minutes on 2 cores
    python bench/population.py --quick                          # smoke test, ~1 minute
    python bench/population.py --device cuda                    # one GPU, the same defaults
    python bench/population.py --workloads digits_mlp --sizes 1 16 --epochs 10 --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import dataclasses
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

from regcore.worker.training import TrainConfig, train_workload
from regcore.workloads import build_workload

BENCH = Path(__file__).resolve().parent


# bench/ is no package (mypy names its files by their bare names): its siblings by theirs.
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from regularizers import L1 as STEP_L1  # noqa: E402
from regularizers import L2 as STEP_L2  # noqa: E402
from regularizers import MODELS, NONE, ModelSpec, Variant, build_variant, environment  # noqa: E402
from regularizers import OPTIMIZERS as STEP_OPTIMIZERS  # noqa: E402

from regcore.worker.population._optim import PopulationOptimizer  # noqa: E402
from regcore.worker.population._stack import Stack  # noqa: E402
from regcore.worker.population._trainer import PopulationTrainer  # noqa: E402

METHOD = "fused"
LAMBDA_RANGE = (1e-5, 1e-3)  # λ₁ and λ₂ of each member, log-uniform
SETTINGS_SEED = 0
TARGET_CPU_K = 16
TARGET_CPU_SPEEDUP = 4.0  # ≥ 4× at K = 16 on 2 CPU cores
TARGET_CUDA_PER_K = 0.5  # ≥ 0.5·K for every K ≤ 64
TARGET_CUDA_BEST = 20.0  # ≥ 20× at the best K
TARGET_CUDA_MAX_K = 64
TARGET_STEP = 1.03  # the population's K = 1 train step ÷ none, SGD and Adam
EQUIVALENCE_STEPS = 3


@dataclass(frozen=True, kw_only=True)
class Job:
    """One workload as its example spec trains it."""

    workload: str
    params: dict[str, Any]
    batch_size: int
    lr: float
    optimizer: str = "adam"
    source: str

    def config(self, *, epochs: int, device: str, seed: int) -> TrainConfig:
        return TrainConfig(
            epochs=epochs,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            lr=self.lr,
            seed=seed,
            device=device,
        )


JOBS: dict[str, Job] = {
    job.workload: job
    for job in (
        Job(
            workload="digits_mlp",
            params={"hidden": [512, 512], "train_size": 150},
            batch_size=32,
            lr=1e-3,
            source="examples/digits.yaml (the README's main job)",
        ),
        Job(
            workload="sparse_regression",
            params={"n_samples": 500, "n_features": 100, "n_informative": 10, "noise": 0.5},
            batch_size=64,
            lr=1e-2,
            source="examples/sparse_regression.yaml",
        ),
    )
}


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


def _synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def draw_settings(n: int) -> list[tuple[float, float]]:
    """(λ₁, λ₂) of members 0 … n−1, the same for every K."""
    low, high = (math.log(v) for v in LAMBDA_RANGE)
    u = torch.rand(n, 2, generator=torch.Generator().manual_seed(SETTINGS_SEED))
    return [
        (math.exp(low + a * (high - low)), math.exp(low + b * (high - low))) for a, b in u.tolist()
    ]


# -- part A: trials per hour ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Run:
    """One timed run of a variant: ``trials`` trials finished in ``wall_s``."""

    wall_s: float
    trials: int
    val_losses: list[float]
    step_ms: float
    peak_bytes: int | None = None  # CUDA only

    @property
    def per_hour(self) -> float:
        return self.trials * 3600 / self.wall_s


def run_single(job: Job, config: TrainConfig, l1: float, l2: float) -> Run:
    """One trial as regsweep runs it without populations."""
    sync = _synchronizer(torch.device(config.device))
    sync()
    started = time.perf_counter()
    workload = build_workload(job.workload, job.params)
    result = train_workload(workload, l1=l1, l2=l2, method=METHOD, config=config)
    sync()
    wall = time.perf_counter() - started
    val_loss = result.metrics["val_loss"]
    return Run(wall_s=wall, trials=1, val_losses=[val_loss], step_ms=result.median_step_ms)


def run_population(job: Job, config: TrainConfig, k: int) -> Run:
    """K members trained together to the end."""
    sync = _synchronizer(torch.device(config.device))
    settings = draw_settings(k)
    sync()
    started = time.perf_counter()
    workload = build_workload(job.workload, job.params)
    trainer = PopulationTrainer(workload, method=METHOD, config=config, k=k)
    for slot, (l1, l2) in enumerate(settings):
        trainer.add(slot, l1=l1, l2=l2, lr=config.lr)
    metrics: dict[int, dict[str, float]] = {}
    for _ in range(config.epochs):
        metrics = trainer.epoch()
    sync()
    wall = time.perf_counter() - started
    return Run(
        wall_s=wall,
        trials=k,
        val_losses=[metrics[slot]["val_loss"] for slot in range(k)],
        step_ms=1000 * statistics.median(trainer.step_times_s),
    )


def run_variant(job: Job, config: TrainConfig, k: int, singles: int) -> Run:
    """K = 1: ``singles`` single trials (one sample: their total); else a population."""
    device = torch.device(config.device)
    gc.collect()
    before = 0
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    if k == 1:
        runs = [run_single(job, config, l1, l2) for l1, l2 in draw_settings(singles)]
        run = Run(
            wall_s=sum(r.wall_s for r in runs),
            trials=len(runs),
            val_losses=[r.val_losses[0] for r in runs],
            step_ms=statistics.median(r.step_ms for r in runs),
        )
    else:
        run = run_population(job, config, k)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - before
        run = dataclasses.replace(run, peak_bytes=peak)
    return run


@dataclass(frozen=True, kw_only=True)
class SizeResult:
    workload: str
    k: int
    per_hour: Band
    speedup: float  # median / median of K = 1
    speedup_band: Band  # of the per-round ratios
    wall_s: Band  # of the whole population (K = 1: of the mean trial)
    step_ms: Band
    val_loss_rel_diff: float | None  # largest, members vs the single trials of equal λ
    cuda_peak_bytes: int | None
    samples_per_hour: list[float]


def measure_throughput(args: argparse.Namespace, log: Callable[[str], None]) -> list[SizeResult]:
    variants = [(name, k) for name in args.workloads for k in args.sizes]
    configs = {
        name: JOBS[name].config(epochs=args.epochs, device=args.device, seed=args.seed)
        for name in args.workloads
    }
    for name, k in variants:  # data caches, kernels, vmap's first trace: untimed
        warm = JOBS[name].config(epochs=1, device=args.device, seed=args.seed)
        run_variant(JOBS[name], warm, k, 1)
    log(f"A: warm-up done; {args.rounds} round(s) of {len(variants)} variants")
    runs: dict[tuple[str, int], list[Run]] = {v: [] for v in variants}
    for r in range(args.rounds):
        shift = r % len(variants)
        for name, k in variants[shift:] + variants[:shift]:
            run = run_variant(JOBS[name], configs[name], k, args.singles)
            runs[(name, k)].append(run)
            log(
                f"A: round {r + 1}/{args.rounds} {name} K={k}: {run.wall_s:.2f} s, "
                f"{run.per_hour:,.0f} trials/h, {run.step_ms:.2f} ms/step"
            )
    results = []
    for name, k in variants:
        base = runs.get((name, 1))
        mine = runs[(name, k)]
        per_hour = [run.per_hour for run in mine]
        ratios = [a.per_hour / b.per_hour for a, b in zip(mine, base or mine, strict=True)]
        speedup = (
            statistics.median(per_hour) / statistics.median(b.per_hour for b in base)
            if base
            else math.nan
        )
        diff = None
        if base and k > 1:
            singles = base[0].val_losses
            pairs = zip(mine[0].val_losses[: len(singles)], singles, strict=False)
            diff = max(abs(a - b) / max(abs(b), 1e-12) for a, b in pairs)
        peaks = [run.peak_bytes for run in mine if run.peak_bytes is not None]
        results.append(
            SizeResult(
                workload=name,
                k=k,
                per_hour=Band.of(per_hour),
                speedup=speedup,
                speedup_band=Band.of(ratios) if base else Band.of([math.nan]),
                wall_s=Band.of([run.wall_s / (run.trials if k == 1 else 1) for run in mine]),
                step_ms=Band.of([run.step_ms for run in mine]),
                val_loss_rel_diff=diff,
                cuda_peak_bytes=max(peaks) if peaks else None,
                samples_per_hour=per_hour,
            )
        )
    return results


def throughput_targets(results: list[SizeResult], device: str) -> dict[str, dict[str, Any]]:
    """The issue's targets per workload: met (bool), or None where nothing measured it."""

    def at_least(speedup: float | None, limit: float) -> bool | None:
        return None if speedup is None or math.isnan(speedup) else speedup >= limit

    checks: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(res.workload for res in results):
        mine = {res.k: res.speedup for res in results if res.workload == name and res.k > 1}
        if device == "cpu":
            label = f"speedup at K={TARGET_CPU_K} >= {TARGET_CPU_SPEEDUP:g}"
            checks[name] = {label: at_least(mine.get(TARGET_CPU_K), TARGET_CPU_SPEEDUP)}
            continue
        checks[name] = {
            f"K={k}: speedup >= {TARGET_CUDA_PER_K * k:g}": at_least(s, TARGET_CUDA_PER_K * k)
            for k, s in mine.items()
            if k <= TARGET_CUDA_MAX_K
        }
        best = max(mine.values(), default=None)
        checks[name][f"best K: speedup >= {TARGET_CUDA_BEST:g}"] = at_least(best, TARGET_CUDA_BEST)
    return checks


# -- part B: peak memory on the CPU, a fresh subprocess per variant -----------------------------


def _status_kb() -> dict[str, int]:
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0])
    return values


def _peak_growth(run: Callable[[], object]) -> tuple[int, int]:
    """(resident KiB before, its peak KiB during) ``run()``; the peak mark reset first."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux ≥ 4.0)
    before = _status_kb()["VmRSS"]
    run()
    return before, _status_kb()["VmHWM"]


def memory_child(args: argparse.Namespace) -> dict[str, Any]:
    """``--memory-child WORKLOAD K``: how much the resident set grows while the variant runs,
    its first run in this process (one-time imports and library state included: torch.optim
    imports torch._dynamo the first time an optimizer is made) and a second one, after the
    first's memory went back (``gc.collect``, glibc's ``malloc_trim``)."""
    name, k = args.memory_child[0], int(args.memory_child[1])
    job = JOBS[name]
    config = job.config(epochs=args.memory_epochs, device="cpu", seed=args.seed)
    first = _peak_growth(lambda: run_variant(job, config, k, 1))
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL(None).malloc_trim(0)
    later = _peak_growth(lambda: run_variant(job, config, k, 1))
    return {
        "workload": name,
        "k": k,
        "epochs": args.memory_epochs,
        "growth_bytes": (later[1] - later[0]) * 1024,
        "first_run_growth_bytes": (first[1] - first[0]) * 1024,
        "rss_kb": {"first_before": first[0], "first_peak": first[1]}
        | {"later_before": later[0], "later_peak": later[1]},
        "optuna_imported": "optuna" in sys.modules,
        "sqlalchemy_imported": "sqlalchemy" in sys.modules,
    }


def measure_cpu_memory(
    args: argparse.Namespace, log: Callable[[str], None]
) -> dict[tuple[str, int], dict[str, Any]]:
    threads = str(torch.get_num_threads())
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    measured = {}
    for name in args.workloads:
        for k in args.sizes:
            command = [sys.executable, str(Path(__file__).resolve()), "--memory-child", name]
            command += [str(k), "--memory-epochs", str(args.memory_epochs)]
            command += ["--threads", threads, "--seed", str(args.seed)]
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
            row: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            measured[(name, k)] = row
            log(f"B: {name} K={k}: +{row['growth_bytes'] / 2**20:.1f} MiB resident at peak")
    return measured


# -- part C: the K = 1 step ----------------------------------------------------------------------


class StepVariant(Protocol):
    name: str

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None: ...  # the whole train step

    def backward(self, x: torch.Tensor, y: torch.Tensor) -> None: ...

    def update(self) -> None: ...  # the optimizer's step alone

    def weights(self) -> dict[str, torch.Tensor]: ...


@dataclass
class TorchStep:
    """bench/regularizers.py's variant (``none`` or ``fused``), its step split in two."""

    variant: Variant
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.variant.name

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.variant.step(x, y)

    def backward(self, x: torch.Tensor, y: torch.Tensor) -> None:
        v = self.variant
        v.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(v.model(x), y)
        if v.reg is not None:
            loss = v.reg.penalize(loss)
        loss.backward()  # type: ignore[no-untyped-call]

    def update(self) -> None:
        self.variant.optimizer.step()

    def weights(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in self.variant.model.named_parameters()}


class PopulationStep:
    """One member on a ``Stack``, stepped as ``PopulationTrainer._step`` steps it."""

    name = "population"

    def __init__(self, base: nn.Module, optimizer: str, defaults: dict[str, Any]) -> None:
        self.model = copy.deepcopy(base)
        self.stack = Stack(self.model, 1)
        self.optimizer = PopulationOptimizer(
            self.stack,
            optimizer=optimizer,
            method=METHOD,
            momentum=defaults.get("momentum"),
            nesterov=defaults.get("nesterov"),
            betas=defaults.get("betas"),
            eps=defaults.get("eps", 1e-8),
        )
        self.optimizer.set_member(0, lr=float(defaults["lr"]), l1=STEP_L1, l2=STEP_L2)

    def _loss(self, params: Any, buffers: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(self.model, (params, buffers), (x,)), y)

    def backward(self, x: torch.Tensor, y: torch.Tensor) -> None:
        for leaf in self.stack.leaves():
            if leaf.grad is not None:
                leaf.grad.zero_()
        losses: torch.Tensor = vmap(self._loss, in_dims=(0, 0, None, None), randomness="different")(
            self.stack.params, self.stack.buffers, x, y
        )
        losses.sum().backward()  # type: ignore[no-untyped-call]

    def update(self) -> None:
        self.optimizer.step()

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.backward(x, y)
        self.update()

    def weights(self) -> dict[str, torch.Tensor]:
        return {n: p.detach()[0] for n, p in self.stack.params.items()}


def make_step_variants(base: nn.Module, optimizer: str) -> list[StepVariant]:
    make = STEP_OPTIMIZERS[optimizer]
    none = TorchStep(build_variant(NONE, base, make))
    fused = TorchStep(build_variant(METHOD, base, make))
    defaults = dict(none.variant.optimizer.defaults)  # the same lr, momentum, betas
    return [none, fused, PopulationStep(base, optimizer, defaults)]


def timed_train_steps(
    v: StepVariant, x: torch.Tensor, y: torch.Tensor, steps: int, sync: Callable[[], None]
) -> float:
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        v.step(x, y)
    sync()
    return (time.perf_counter() - start) / steps


def timed_updates(
    v: StepVariant, x: torch.Tensor, y: torch.Tensor, steps: int, sync: Callable[[], None]
) -> float:
    total = 0.0
    for _ in range(steps):
        v.backward(x, y)
        sync()
        start = time.perf_counter()
        v.update()
        sync()
        total += time.perf_counter() - start
    return total / steps


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()  # a collection inside one variant's block would be charged to it alone
    try:
        yield
    finally:
        gc.enable()


@dataclass(frozen=True, kw_only=True)
class StepResult:
    device: str
    model: str
    parameters: int
    batch: int
    optimizer: str
    rounds: int
    steps_per_round: int
    train_step_ms: dict[str, Band]
    train_step_ratio: dict[str, float]  # median / median of none
    train_step_ratio_band: dict[str, Band]  # per-round ratios
    optimizer_step_ms: dict[str, Band]
    optimizer_step_ratio: dict[str, float]
    optimizer_step_ratio_band: dict[str, Band]
    max_abs_weight_diff: float  # fused vs population after EQUIVALENCE_STEPS steps

    @property
    def target_met(self) -> bool:
        return self.train_step_ratio["population"] <= TARGET_STEP


def max_weight_difference(
    base: nn.Module, optimizer: str, x: torch.Tensor, y: torch.Tensor
) -> float:
    _, fused, population = make_step_variants(base, optimizer)
    for _ in range(EQUIVALENCE_STEPS):
        fused.step(x, y)
        population.step(x, y)
    theirs = population.weights()
    return max(float((w - theirs[n]).abs().max()) for n, w in fused.weights().items())


def _ratios(times: dict[str, list[float]]) -> tuple[dict[str, float], dict[str, Band]]:
    none = times[NONE]
    ratio = {n: statistics.median(t) / statistics.median(none) for n, t in times.items()}
    bands = {n: Band.of([a / b for a, b in zip(t, none, strict=True)]) for n, t in times.items()}
    return ratio, bands


def measure_step(
    spec: ModelSpec, optimizer: str, args: argparse.Namespace, log: Callable[[str], None]
) -> StepResult:
    device = torch.device(args.device)
    sync = _synchronizer(device)
    torch.manual_seed(args.seed)
    base = spec.build().to(device)
    x = torch.randn(spec.batch, spec.sizes[0], device=device)
    y = torch.randint(0, spec.sizes[-1], (spec.batch,), device=device)
    difference = max_weight_difference(base, optimizer, x, y)
    variants = make_step_variants(base, optimizer)
    for v in variants:  # optimizer state, kernels, vmap's first trace
        for _ in range(args.step_warmup):
            v.step(x, y)
    step_s = {v.name: timed_train_steps(v, x, y, 1, sync) for v in variants}
    steps = args.step_steps or max(1, min(50, round(args.step_block_s / step_s[NONE])))
    round_s = 2 * steps * sum(step_s.values())  # train steps, then as many backward + update
    if args.step_rounds is not None:
        rounds = args.step_rounds
    else:
        budget = args.step_budget_s * (4.0 if spec.name == "mlp-21m" else 1.0)
        rounds = max(10, min(200, math.floor(budget / round_s)))
    log(
        f"C: {device.type} {spec.name} {optimizer}: "
        + ", ".join(f"{n} {t * 1e3:.1f}" for n, t in step_s.items())
        + f" ms/step → {rounds} rounds × {steps} step(s) × 2 regions, ~{rounds * round_s:.0f} s"
    )
    whole: dict[str, list[float]] = {v.name: [] for v in variants}
    alone: dict[str, list[float]] = {v.name: [] for v in variants}
    with _no_gc():
        for r in range(rounds):
            shift = r % len(variants)
            for v in variants[shift:] + variants[:shift]:
                whole[v.name].append(timed_train_steps(v, x, y, steps, sync))
                alone[v.name].append(timed_updates(v, x, y, steps, sync))
    whole_ratio, whole_band = _ratios(whole)
    alone_ratio, alone_band = _ratios(alone)
    return StepResult(
        device=device.type,
        model=spec.name,
        parameters=sum(p.numel() for p in base.parameters()),
        batch=spec.batch,
        optimizer=optimizer,
        rounds=rounds,
        steps_per_round=steps,
        train_step_ms={n: Band.of([t * 1e3 for t in ts]) for n, ts in whole.items()},
        train_step_ratio=whole_ratio,
        train_step_ratio_band=whole_band,
        optimizer_step_ms={n: Band.of([t * 1e3 for t in ts]) for n, ts in alone.items()},
        optimizer_step_ratio=alone_ratio,
        optimizer_step_ratio_band=alone_band,
        max_abs_weight_diff=difference,
    )


# -- output -------------------------------------------------------------------------------------


def _mark(met: bool | None) -> str:
    return "" if met is None else ("[green]✓[/]" if met else "[red]✗[/]")


def _mib(n: float | None) -> str:
    return "—" if n is None else f"{n / 2**20:,.1f}"


def throughput_table(
    results: list[SizeResult], args: argparse.Namespace, targets: dict[str, Any]
) -> Table:
    table = Table(
        title=f"A. Finished trials per hour, {METHOD}, {args.epochs} epochs each, {args.device}, "
        f"{torch.get_num_threads()} threads (median, p25–p75 over {args.rounds} rounds)"
    )
    for column in ("workload", "K", "trials/h", "÷ K=1", "target", "wall s", "step ms", "Δ val"):
        table.add_column(column, justify="left" if column == "workload" else "right", no_wrap=True)
    for res in results:
        target = ""
        if args.device == "cpu" and res.k == TARGET_CPU_K:
            target = f"≥ {TARGET_CPU_SPEEDUP:g} {_mark(res.speedup >= TARGET_CPU_SPEEDUP)}"
        elif args.device == "cuda" and 1 < res.k <= TARGET_CUDA_MAX_K:
            need = TARGET_CUDA_PER_K * res.k
            target = f"≥ {need:g} {_mark(res.speedup >= need)}"
        speedup = (
            "1"
            if res.k == 1
            else f"{res.speedup:.2f} "
            + (
                f"[dim]{res.speedup_band.p25:.2f}–{res.speedup_band.p75:.2f}[/]"
                if res.speedup_band.n > 1
                else ""
            )
        )
        diff = "—" if res.val_loss_rel_diff is None else f"{res.val_loss_rel_diff:.1e}"
        table.add_row(
            res.workload,
            str(res.k),
            res.per_hour.text(",.0f"),
            speedup,
            target,
            res.wall_s.text(".2f"),
            res.step_ms.text(".2f"),
            diff,
        )
    return table


def memory_table(
    results: list[SizeResult],
    cpu_memory: dict[tuple[str, int], dict[str, Any]],
    args: argparse.Namespace,
) -> Table:
    first: dict[tuple[str, int], int | None] = {}
    if args.device == "cuda":
        what = "torch.cuda.max_memory_allocated − allocated before, largest over the rounds"
        peaks = {(r.workload, r.k): r.cuda_peak_bytes for r in results}
    else:
        what = (
            f"growth of the resident set at its peak (VmHWM − VmRSS before), a fresh process "
            f"per variant, {args.memory_epochs} epoch(s); its second run, and its first "
            "(one-time imports and library state included)"
        )
        peaks = {key: row["growth_bytes"] for key, row in cpu_memory.items()}
        first = {key: row["first_run_growth_bytes"] for key, row in cpu_memory.items()}
    table = Table(title=f"B. Peak memory, {args.device}: {what}")
    columns = ["workload", "K", "peak MiB", "MiB per member", "÷ K=1"]
    columns += ["first run MiB"] if first else []
    for column in columns:
        table.add_column(column, justify="left" if column == "workload" else "right", no_wrap=True)
    for (name, k), peak in peaks.items():
        base = peaks.get((name, 1))
        ratio = "—" if peak is None or not base else f"{peak / base:.1f}"
        per_member = None if peak is None else peak / k
        cells = [name, str(k), _mib(peak), _mib(per_member), ratio]
        table.add_row(*cells, *([_mib(first[(name, k)])] if first else []))
    return table


def step_table(results: list[StepResult]) -> Table:
    table = Table(
        title="C. K = 1 step ÷ none (median, p25–p75 of per-round ratios); train step = "
        "zero_grad+forward+backward+step as bench/regularizers.py, optimizer = step alone"
    )
    for column in ("device", "model", "optimizer"):
        table.add_column(column, no_wrap=True)
    for column in (
        "none ms",
        "fused",
        f"population ≤ {TARGET_STEP:.2f}",
        "none opt ms",
        "fused opt",
        "population opt",
        "|Δw|",
    ):
        table.add_column(column, justify="right", no_wrap=True)

    def cell(ratio: float, band: Band, met: bool | None = None) -> str:
        mark = f" {_mark(met)}" if met is not None else ""
        return f"{ratio:.3f}{mark} [dim]{band.p25:.2f}–{band.p75:.2f}[/]"

    for res in results:
        table.add_row(
            res.device,
            res.model,
            res.optimizer,
            f"{res.train_step_ms[NONE].median:.2f}",
            cell(res.train_step_ratio["fused"], res.train_step_ratio_band["fused"]),
            cell(
                res.train_step_ratio["population"],
                res.train_step_ratio_band["population"],
                res.target_met,
            ),
            f"{res.optimizer_step_ms[NONE].median:.2f}",
            cell(res.optimizer_step_ratio["fused"], res.optimizer_step_ratio_band["fused"]),
            cell(
                res.optimizer_step_ratio["population"], res.optimizer_step_ratio_band["population"]
            ),
            f"{res.max_abs_weight_diff:.1e}",
        )
    return table


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


# -- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--workloads", nargs="+", choices=list(JOBS), default=list(JOBS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 4, 16, 64], help="K values")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of every trial")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every (workload, K)")
    parser.add_argument("--singles", type=int, default=3, help="single trials per K=1 sample")
    parser.add_argument("--memory-epochs", type=int, default=1, help="epochs of a memory run")
    parser.add_argument(
        "--parts", nargs="+", choices=["throughput", "memory", "step"], default=None
    )
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument(
        "--optimizers", nargs="+", choices=list(STEP_OPTIMIZERS), default=list(STEP_OPTIMIZERS)
    )
    parser.add_argument(
        "--step-budget-s", type=float, default=8.0, help="C: seconds per small config (21m: 4×)"
    )
    parser.add_argument("--step-rounds", type=int, help="C: fixed rounds (default: budgeted)")
    parser.add_argument("--step-steps", type=int, help="C: steps per block (default: ~50 ms)")
    parser.add_argument("--step-block-s", type=float, default=0.05, help=argparse.SUPPRESS)
    parser.add_argument("--step-warmup", type=int, default=3, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help="torch threads (default: as at the start)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke test of every part")
    parser.add_argument(
        "--out", type=Path, default=BENCH / "results" / "population.json", help="JSON output"
    )
    parser.add_argument(
        "--memory-child", nargs=2, metavar=("WORKLOAD", "K"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch.cuda.is_available() is False")
    if args.quick:
        args.sizes = [k for k in args.sizes if k <= 4] or [1, 4]
        args.epochs = 2
        args.rounds, args.singles, args.memory_epochs = 1, 1, 1
        args.step_rounds, args.step_steps, args.step_warmup = 2, 1, 1
    args.sizes = sorted(set(args.sizes))
    for option in ("epochs", "rounds", "singles", "memory_epochs", "threads", "step_rounds"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be >= 1, but got {value}")
    if args.sizes[0] < 1:
        parser.error(f"--sizes must be >= 1, but got {args.sizes}")
    if args.parts is None:
        args.parts = ["throughput", "memory", "step"]
        if args.device == "cuda":
            args.parts.remove("memory")  # on CUDA the throughput rounds measure it
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.set_num_threads(torch.get_num_threads())  # fixed from here on, children included
    if args.memory_child is not None:
        print(json.dumps(memory_child(args)))
        return 0
    console = Console()
    if not console.is_terminal:  # piped into a file or `tee`: keep each table row on one line
        console = Console(width=200)
    env = environment([torch.device(args.device)])
    console.print(
        f"torch {env['torch']}, {torch.get_num_threads()} threads "
        f"(interop {torch.get_num_interop_threads()}), {os.cpu_count()} CPUs, "
        + ", ".join(f"{k}: {v}" for k, v in env["device_names"].items())
    )

    def log(message: str) -> None:
        console.print(f"[dim]{message}[/]")

    started = time.perf_counter()
    sizes: list[SizeResult] = []
    cpu_memory: dict[tuple[str, int], dict[str, Any]] = {}
    steps: list[StepResult] = []
    if "throughput" in args.parts or ("memory" in args.parts and args.device == "cuda"):
        sizes = measure_throughput(args, log)
    if "memory" in args.parts and args.device == "cpu":
        cpu_memory = measure_cpu_memory(args, log)
    if "step" in args.parts:
        steps = [
            measure_step(MODELS[model], optimizer, args, log)
            for model in args.models
            for optimizer in args.optimizers
        ]
    elapsed = time.perf_counter() - started
    console.print(f"measured in {elapsed:.0f} s")

    targets = throughput_targets(sizes, args.device)
    if sizes:
        console.print(throughput_table(sizes, args, targets))
        for job in (JOBS[name] for name in args.workloads):
            console.print(
                f"  {job.workload}: {job.source}, params {job.params}, batch {job.batch_size}, "
                f"{job.optimizer} lr {job.lr:g}; λ₁, λ₂ log-uniform in "
                f"[{LAMBDA_RANGE[0]:g}, {LAMBDA_RANGE[1]:g}]"
            )
        console.print(
            "  wall s: one population's whole training (K=1: one trial's), build included; "
            "step ms: median train step (K ≥ 2: the epoch's steps ÷ their number); "
            "Δ val: largest relative val_loss difference, member i vs the single trial i"
        )
    if cpu_memory or (sizes and args.device == "cuda"):
        console.print(memory_table(sizes, cpu_memory, args))
    if steps:
        console.print(step_table(steps))
        console.print(
            "  none: torch.optim, no regularization; fused: + Regularizer(method='fused'); "
            "population: PopulationOptimizer(method='fused') on a Stack of k=1, forward and "
            "backward through vmap(functional_call) as PopulationTrainer does; |Δw|: fused vs "
            f"population after {EQUIVALENCE_STEPS} steps. Target on the population train step."
        )
    console.print("[bold]Targets[/]")
    if args.device == "cpu":
        console.print(f"  CPU: trials/h at K = {TARGET_CPU_K} ≥ {TARGET_CPU_SPEEDUP:g}× K = 1")
    else:
        console.print(
            f"  CUDA: ≥ {TARGET_CUDA_PER_K:g}·K for every K ≤ {TARGET_CUDA_MAX_K}, "
            f"≥ {TARGET_CUDA_BEST:g}× at the best K"
        )
    for name, checks in targets.items():
        for what, met in checks.items():
            console.print(f"  {name}: {what}: {_mark(met) if met is not None else 'not measured'}")
    for res in steps:
        console.print(
            f"  step {res.model} {res.optimizer}: population ÷ none = "
            f"{res.train_step_ratio['population']:.3f} ≤ {TARGET_STEP:.2f} {_mark(res.target_met)}"
        )
    heavy = [m for m in ("optuna", "sqlalchemy") if m in sys.modules]
    console.print(f"  modules loaded: {heavy or 'none of optuna, sqlalchemy'}")

    document = {
        **env,
        "threads": torch.get_num_threads(),
        "elapsed_s": elapsed,
        "settings": {
            "device": args.device,
            "method": METHOD,
            "epochs": args.epochs,
            "rounds": args.rounds,
            "singles": args.singles,
            "sizes": args.sizes,
            "lambda_range": LAMBDA_RANGE,
            "jobs": {name: asdict(JOBS[name]) for name in args.workloads},
            "memory_epochs": args.memory_epochs,
            "quick": args.quick,
            "step_l1": STEP_L1,
            "step_l2": STEP_L2,
        },
        "throughput": [asdict(res) for res in sizes],
        "throughput_targets": targets,
        "memory_cpu": [row for row in cpu_memory.values()],
        "step": [{**asdict(res), "target_met": res.target_met} for res in steps],
        "step_target": TARGET_STEP,
        "heavy_modules_loaded": heavy,
    }
    write_json(args.out, document)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
