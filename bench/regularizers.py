"""What each regularization method costs per training step, relative to no regularization.

For every configuration (device × model × optimizer) this builds one model copy per variant —
``none`` and every method of ``regcore.regularizers.METHODS`` — from the same initial weights,
each with its own optimizer made from ``reg.param_groups()`` and ``reg.attach(opt)``, and times
the same training step on the same fixed synthetic batch::

    opt.zero_grad(set_to_none=True)
    loss = reg.penalize(cross_entropy(model(x), y))
    loss.backward()
    opt.step()

The variants are measured interleaved: each round times a few steps of every variant (the
starting variant rotates from round to round), and there are many rounds, so drift, thermal
changes and other processes on the machine hit all variants alike. On CUDA the device is
synchronized before each clock reading, after an untimed warm-up.

How to read the table: each method's cell is ``median(step time) / median(step time of none)``
and, after it, the p25–p75 band of the per-round ratios (that variant's time in a round divided
by ``none``'s time in the same round). 1.05 means the method makes a step 5 % slower; a band
that straddles 1.00 means the method's cost is within the noise. ``none ms`` is the
unregularized step's median. Coefficients: λ₁ = 1e-5 (0 for ``weight_decay``, which cannot
express L1), λ₂ = 1e-4. The targets of the issue (CPU only) are printed after the table.

The round count is chosen from a per-configuration time budget and the step time measured in
the warm-up, so a full run takes about the same time on a fast or a slow machine (about 5½
minutes on 2 CPU cores for both models and both optimizers); ``--rounds`` fixes it instead.

    python bench/regularizers.py                 # full run, CPU (and CUDA if present)
    python bench/regularizers.py --quick         # smoke test, well under a minute
    python bench/regularizers.py --device cpu --models mlp-21m --optimizers sgd --threads 2
    python bench/regularizers.py --before ../old-checkout   # before:NAME beside NAME
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import importlib
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.nn import functional as F

from regcore.regularizers import L1_METHODS, METHODS, Regularizer, select_parameters

L1 = 1e-5
L2 = 1e-4
NONE = "none"
VARIANTS: tuple[str, ...] = (NONE, *METHODS)
# --before PATH: the methods of another checkout's regcore.regularizers, as "before:NAME"
# variants measured in the same rounds (a speed change compared with what it replaces).
BEFORE: dict[str, Any] = {}
# --clock cpu: the process's CPU time instead of the wall clock. On a machine others load,
# CPU time leaves out the time the process waited for a core (with --threads 1 it is the
# work itself; with more, OpenMP's spin-waits count too). CPU devices only.
CLOCK: dict[str, Callable[[], float]] = {"now": time.perf_counter}

# The targets (CPU, ratio to `none`); the article's `loss` method measures ~1.2-1.5x.
TARGETS: dict[str, float] = {"fused": 1.03, "hook": 1.03, "proximal": 1.03}
ARTICLE_LOSS = "~1.2–1.5"

OptimizerFactory = Callable[[list[dict[str, Any]]], torch.optim.Optimizer]
OPTIMIZERS: dict[str, OptimizerFactory] = {
    "sgd": lambda groups: torch.optim.SGD(groups, lr=0.01, momentum=0.9),
    "adam": lambda groups: torch.optim.Adam(groups, lr=1e-3),
}


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """An MLP ``sizes[0] → … → sizes[-1]`` with ReLU between layers, and its batch size.

    ``budget_s`` is the time spent in timed steps per configuration (before
    ``--budget-scale``): the 21M model gets more because its ratios are what the issue is about.
    """

    name: str
    sizes: tuple[int, ...]
    batch: int
    budget_s: float

    def build(self) -> nn.Sequential:
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        return nn.Sequential(*layers[:-1])


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(name="mlp-784-512-512-10", sizes=(784, 512, 512, 10), batch=128, budget_s=25.0),
        # 21.05M parameters.
        ModelSpec(name="mlp-21m", sizes=(784, 4096, 4096, 256, 10), batch=128, budget_s=120.0),
    )
}


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How much to measure: fixed (``rounds``/``steps`` set) or from the time budget."""

    warmup_steps: int = 3
    block_s: float = 0.05  # aim for timed blocks this long: clock and sync overhead vanish
    max_steps: int = 50
    min_rounds: int = 10
    max_rounds: int = 100
    budget_scale: float = 1.0
    rounds: int | None = None
    steps: int | None = None


QUICK = Plan(warmup_steps=1, rounds=3, steps=1)


@dataclass(frozen=True, kw_only=True)
class Config:
    device: torch.device
    model: ModelSpec
    optimizer: str

    @property
    def label(self) -> str:
        return f"{self.device.type} {self.model.name} {self.optimizer}"


@dataclass
class Variant:
    """One model copy with its optimizer and (except ``none``) its regularizer."""

    name: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    reg: Regularizer | None

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(x), y)
        if self.reg is not None:
            loss = self.reg.penalize(loss)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()


@dataclass(frozen=True, kw_only=True)
class VariantStats:
    median_ms: float
    p25_ms: float
    p75_ms: float
    ratio: float  # median / median(none)
    ratio_p25: float  # band of the per-round ratios to none
    ratio_p75: float


@dataclass(frozen=True, kw_only=True)
class ConfigResult:
    device: str
    model: str
    parameters: int
    batch: int
    optimizer: str
    rounds: int
    steps_per_round: int
    variants: dict[str, VariantStats]

    def target_met(self, method: str) -> bool | None:
        """Whether ``method`` meets its issue target here (None: no target for it here)."""
        if self.device != "cpu" or method not in TARGETS:
            return None
        return self.variants[method].ratio <= TARGETS[method]


def load_before(checkout: Path) -> Any:
    """``regcore.regularizers`` of another checkout, imported beside this one's."""
    mine = {k: m for k, m in sys.modules.items() if k == "regcore" or k.startswith("regcore.")}
    for k in mine:
        del sys.modules[k]
    sys.path.insert(0, str(checkout))
    try:
        return importlib.import_module("regcore.regularizers")
    finally:
        sys.path.remove(str(checkout))
        for k in [k for k in sys.modules if k == "regcore" or k.startswith("regcore.")]:
            del sys.modules[k]  # the other checkout's modules live on through its functions
        sys.modules.update(mine)


def build_variant(name: str, base: nn.Module, make_optimizer: OptimizerFactory) -> Variant:
    model = copy.deepcopy(base)
    if name.startswith("before:"):
        method = name.removeprefix("before:")
        old = BEFORE["module"].Regularizer(
            model, l1=L1 if method in L1_METHODS else 0.0, l2=L2, method=method
        )
        optimizer = make_optimizer(old.param_groups())
        old.attach(optimizer)
        return Variant(name, model, optimizer, old)
    if name == NONE:
        # The same two groups reg.param_groups() makes, so only the regularization differs.
        regularized, excluded = select_parameters(model)
        groups = [{"params": [p for _, p in ps]} for ps in (regularized, excluded) if ps]
        return Variant(name, model, make_optimizer(groups), None)
    reg = Regularizer(model, l1=L1 if name in L1_METHODS else 0.0, l2=L2, method=name)
    optimizer = make_optimizer(reg.param_groups())
    reg.attach(optimizer)
    return Variant(name, model, optimizer, reg)


def variant_names() -> tuple[str, ...]:
    return VARIANTS + tuple(f"before:{m}" for m in BEFORE.get("methods", ()))


def _columns() -> tuple[str, ...]:
    """The table's method columns: each method, its "before" beside it where measured."""
    before = set(BEFORE.get("methods", ()))
    return tuple(c for m in METHODS for c in (m, *([f"before:{m}"] if m in before else [])))


def _synchronizer(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def timed_steps(
    variant: Variant, x: torch.Tensor, y: torch.Tensor, steps: int, sync: Callable[[], None]
) -> float:
    """Seconds per step over ``steps`` consecutive steps."""
    sync()
    start = CLOCK["now"]()
    for _ in range(steps):
        variant.step(x, y)
    sync()
    return (CLOCK["now"]() - start) / steps


def choose_rounds(plan: Plan, config: Config, step_s: float) -> tuple[int, int]:
    """(rounds, steps per round) from the plan and the warm-up's seconds per step."""
    steps = plan.steps or max(1, min(plan.max_steps, round(plan.block_s / step_s)))
    if plan.rounds is not None:
        return plan.rounds, steps
    budget = config.model.budget_s * plan.budget_scale
    rounds = math.floor(budget / (len(variant_names()) * steps * step_s))
    return max(plan.min_rounds, min(plan.max_rounds, rounds)), steps


def measure(config: Config, plan: Plan, console: Console, seed: int) -> ConfigResult:
    torch.manual_seed(seed)
    base = config.model.build().to(config.device)
    x = torch.randn(config.model.batch, config.model.sizes[0], device=config.device)
    y = torch.randint(0, config.model.sizes[-1], (config.model.batch,), device=config.device)
    make_optimizer = OPTIMIZERS[config.optimizer]
    variants = [build_variant(name, base, make_optimizer) for name in variant_names()]
    sync = _synchronizer(config.device)

    for variant in variants:  # optimizer state, scratch buffers, kernels, caches
        for _ in range(plan.warmup_steps):
            variant.step(x, y)
    step_s = statistics.median(timed_steps(v, x, y, 1, sync) for v in variants)
    rounds, steps = choose_rounds(plan, config, step_s)
    expected = rounds * steps * len(variants) * step_s
    console.print(
        f"[bold]{config.label}[/]: {step_s * 1e3:.1f} ms/step → {rounds} rounds × {steps} "
        f"step(s) × {len(variants)} variants, ~{expected:.1f} s"
    )

    times: dict[str, list[float]] = {v.name: [] for v in variants}
    gc.collect()
    gc.disable()  # a collection inside one variant's block would be charged to it alone
    try:
        for r in range(rounds):
            shift = r % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                times[variant.name].append(timed_steps(variant, x, y, steps, sync))
    finally:
        gc.enable()

    return ConfigResult(
        device=config.device.type,
        model=config.model.name,
        parameters=sum(p.numel() for p in base.parameters()),
        batch=config.model.batch,
        optimizer=config.optimizer,
        rounds=rounds,
        steps_per_round=steps,
        variants={name: summarize(t, times[NONE]) for name, t in times.items()},
    )


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def summarize(times: list[float], baseline: list[float]) -> VariantStats:
    p25, median, p75 = _quartiles(times)
    ratio_p25, _, ratio_p75 = _quartiles([t / b for t, b in zip(times, baseline, strict=True)])
    return VariantStats(
        median_ms=median * 1e3,
        p25_ms=p25 * 1e3,
        p75_ms=p75 * 1e3,
        ratio=median / statistics.median(baseline),
        ratio_p25=ratio_p25,
        ratio_p75=ratio_p75,
    )


# -- output -------------------------------------------------------------------------------------


def _mark(met: bool | None) -> tuple[str, str]:
    """(style, suffix) for a cell whose method has a target here."""
    if met is None:
        return "", ""
    return ("green", " ✓") if met else ("red", " ✗")


def results_table(results: list[ConfigResult]) -> Table:
    table = Table(title="Step time ÷ step time without regularization (median, p25–p75 band)")
    for column in ("device", "model", "optimizer"):
        table.add_column(column, no_wrap=True)
    table.add_column("none ms", justify="right", no_wrap=True)
    for method in _columns():
        table.add_column(method, justify="right", no_wrap=True)
    for res in results:
        cells = [res.device, res.model, res.optimizer, f"{res.variants[NONE].median_ms:.1f}"]
        for method in _columns():
            stats = res.variants[method]
            style, suffix = _mark(res.target_met(method))
            text = f"{stats.ratio:.2f}{suffix} [dim]{stats.ratio_p25:.2f}–{stats.ratio_p75:.2f}[/]"
            cells.append(f"[{style}]{text}[/]" if style else text)
        table.add_row(*cells)
    return table


def targets_table(results: list[ConfigResult]) -> Table | None:
    cpu = [res for res in results if res.device == "cpu"]
    if not cpu:
        return None
    table = Table(title="The issue's targets (CPU)")
    table.add_column("model")
    table.add_column("optimizer")
    for method, limit in TARGETS.items():
        table.add_column(f"{method} ≤ {limit:.2f}", justify="right")
    table.add_column(f"loss (article {ARTICLE_LOSS})", justify="right")
    for res in cpu:
        cells = [res.model, res.optimizer]
        for method in TARGETS:
            style, suffix = _mark(res.target_met(method))
            cells.append(f"[{style}]{res.variants[method].ratio:.2f}{suffix}[/]")
        cells.append(f"{res.variants['loss'].ratio:.2f}")
        table.add_row(*cells)
    return table


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(devices: list[torch.device]) -> dict[str, Any]:
    names = {"cpu": _cpu_name()}
    if any(d.type == "cuda" for d in devices):
        names["cuda"] = torch.cuda.get_device_name()
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device_names": names,
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "cpu_count": os.cpu_count(),
        "clock": "process_time" if CLOCK["now"] is time.process_time else "perf_counter",
        # Other processes' load at the start (1, 5, 15 min): numbers from a busy machine vary.
        "load_average": list(os.getloadavg()),
    }


def write_json(path: Path, env: dict[str, Any], plan: Plan, results: list[ConfigResult]) -> None:
    document = {
        **env,
        "l1": L1,
        "l2": L2,
        "plan": asdict(plan),
        "targets_cpu": TARGETS,
        "results": [
            {
                **asdict(res),
                "targets_met": {m: res.target_met(m) for m in TARGETS if res.device == "cpu"},
            }
            for res in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


# -- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1 step: a smoke test")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument(
        "--optimizers", nargs="+", choices=list(OPTIMIZERS), default=list(OPTIMIZERS)
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda", "all"], default="all", help="all: cpu, and cuda if any"
    )
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: as is)")
    parser.add_argument(
        "--budget-scale", type=float, default=1.0, help="multiply the time budgets (e.g. 2)"
    )
    parser.add_argument("--rounds", type=int, help="fixed number of rounds (default: budgeted)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: time.process_time (robust to other load; use with --threads 1)",
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout: its methods run as before:NAME variants in the same rounds",
    )
    parser.add_argument(
        "--before-methods",
        nargs="+",
        choices=list(METHODS),
        default=["fused", "hook", "proximal"],
        help="which methods --before measures (default: the issue's three)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "regularizers.json"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch.cuda.is_available() is False")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, but got {args.threads}")
    if args.budget_scale <= 0:
        parser.error(f"--budget-scale must be > 0, but got {args.budget_scale}")
    if args.clock == "cpu" and args.device != "cpu":
        parser.error(f"--clock cpu times the CPU only, but got --device {args.device}")
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be >= 1, but got {args.rounds}")
    return args


def _devices(choice: str) -> list[torch.device]:
    if choice == "all":
        return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    return [torch.device(choice)]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else Plan(budget_scale=args.budget_scale)
    if args.rounds is not None:
        plan = Plan(**{**asdict(plan), "rounds": args.rounds})
    if args.clock == "cpu":
        CLOCK["now"] = time.process_time
    if args.before is not None:
        BEFORE.update(module=load_before(args.before), methods=tuple(args.before_methods))
    devices = _devices(args.device)
    env = environment(devices)
    console = Console()
    if not console.is_terminal:  # piped into a file or `tee`: keep each table row on one line
        console = Console(width=180)
    console.print(
        f"torch {env['torch']}, {env['threads']} threads, clock {env['clock']}, load "
        + " ".join(f"{x:.1f}" for x in env["load_average"])
        + ", "
        + ", ".join(f"{k}: {v}" for k, v in env["device_names"].items())
    )

    configs = [
        Config(device=device, model=MODELS[model], optimizer=optimizer)
        for device in devices
        for model in args.models
        for optimizer in args.optimizers
    ]
    started = time.perf_counter()
    results = [measure(config, plan, console, args.seed) for config in configs]
    console.print(f"measured in {time.perf_counter() - started:.0f} s")

    console.print(results_table(results))
    targets = targets_table(results)
    if targets is not None:
        console.print(targets)
    write_json(args.out, env, plan, results)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
