"""Time to λ: training epochs a sweep spends until it first finds a setting within 1 % of the best.

For each workload, a reference grid — 6 × 6 log-spaced λ₁ × λ₂ for each of the three method
classes (methods ``loss``, ``decoupled``, ``proximal``: 108 points, plus regsweep's λ = 0
baseline trial), run once through regsweep (sampler ``grid``) — gives the target: its best
value. Every strategy is then scored by the training epochs it spent, counted in trial
completion order (``datetime_complete``), until a trial *trained from scratch* reached a value
within 1 % of that target (|value − best| ≤ 1 % of |best|, on the better side counts too).
Every epoch counts: those of pruned and failed trials, and regsweep's cost probe (timing steps
of every listed method before the first trial, counted as steps ÷ steps per epoch). A trial
counts as found only where regsweep's own rule (``regcore.trial_kinds``, ``from_scratch``)
says it was trained from scratch with the search's seed: never a path point trained from a
warm start (its value is not what the setting gives from scratch), nor a confirmation.

Strategies (each one row of ``STRATEGIES``; λ₁, λ₂ log ranges are the workload's):

- ``grid``: the reference. Its own "epochs until" depends on the order it visits the grid,
  which Optuna's GridSampler draws from the sampler seed: the run is seed 0, and seeds 0–4 are
  *replayed* (the same sampler and seed asked in an in-memory study, each point answered with
  the run's recorded result). The run has ``--grid-workers`` workers (default 2: its points
  are independent), so only with 1 does its real order match the replay of seed 0 (checked).
- ``random``, ``tpe``: plain Optuna as a user writes it: ``optuna.create_study`` with
  RandomSampler / TPESampler(seed), an objective over the six methods (categorical), λ₂ and λ₁
  (log; λ₁ only where the method applies it) that calls ``regcore.worker.training.train_workload``.
- ``tpe+hyperband``: the same TPE objective, reporting every epoch to HyperbandPruner
  (min_resource 1, max_resource = epochs), pruned trials raising ``TrialPruned``.
- ``classes+tpe+hyperband``: regsweep itself (``regcore.worker.local.run_local_sweep``, one worker,
  SQLite in a temporary directory): all six methods (it samples the class and runs its
  cheapest method), sampler tpe, pruner hyperband; the budget includes its baseline trial.
- ``path``: regsweep with ``sampler: {name: path, options: {points: 8, epochs_fraction: 0.1,
  patience: 3, stop_after_worse: 2}}``; skipped with the reason where path mode is missing.
  A whole path is 2 + 3 × 8 = 26 trials; a smaller ``--trials`` (``--quick``) is raised to it.
- ``default``: regsweep with a spec that names no sampler (only its seed), no pruner and no
  confirm section but ``seeds: 0``: whatever the defaults are when it runs (the table's notes
  say what they were, and which commit each row's code was). Like the other regsweep rows it
  ends once a from-scratch trial is within 1 %.
- ``default+population``: the same with ``execution: {population: auto}`` (K trials at once
  for throughput), shown as skipped where the defaults refuse populations. The two rows'
  wall clock side by side, in one run, is what populations buy; the notes give the ratios.

Every regsweep spec here says ``confirm: {seeds: 0}``: the bench measures the search, not the
confirmation that re-trains its best with new seeds afterwards.

Each search strategy runs ``--trials`` trials (default 30, as examples/digits.yaml) for each
sampler seed 0 … N−1; a seed that never got within 1 % shows as ">N" (its total) and counts
as infinite in the median. A search ends once a from-scratch trial is within 1 % of the
target (plain Optuna: ``study.stop()``; regsweep: stopped as by Ctrl-C, the running trial
ends interrupted): what comes after cannot change its epochs to 1 %, and it saves most of
the compute. ``--full-budget`` runs every search to its budget (then ``best`` is the run's).
The grid of a workload runs first; its searches start once it has (they need its target),
and a free slot takes the first runnable run in ``--workloads`` order, seed by seed, so a
run cut short has every strategy of fewer seeds (``--score-only`` then scores what the JSON
holds). A run that failed because the checkout's code did not import (an edit half done in
a shared checkout) is run again, up to 5 times 2 minutes apart; ``--resume`` reruns what
still failed.
Training seed 0 everywhere, every run in its own process with the same torch thread count, so
values of the same setting agree between strategies. Columns: ``÷ grid`` is the median over
the grid's total epochs (target ≤ 1/20 for the best strategy), ``÷ tpe`` over plain TPE's
median (target ≤ 1/2); ``best`` the median over seeds of each run's best from-scratch value
(up to its stop); ``trials``, ``epochs used`` what a run used in all (median); ``s to 1 %``
the wall-clock seconds from a run's start (its cost probe included) to the end of the trial
that got there, ``s used`` a whole run's (medians; the grid's are one worker's: its trials'
durations added up in the replayed order). Seconds depend on the machine's load (the runs
share it, ``--jobs`` at a time): compare rows of one run, not across runs.

Workloads (``WORKLOADS``): ``digits`` is the quick start's (examples/digits.yaml);
``sparse_regression`` is examples/sparse_regression.yaml's data with val_loss and log ranges
for both λ (λ₁ 1e-5…1; 60 epochs: λ = 0 gives val_loss 0.43, λ₁ ≈ 0.1 gives 0.33);
``digits_cnn`` is the third; ``noisy_tabular`` (regcore/workloads/_noisy_tabular.py) the
fourth, unlike them: λ = 0 overfits (val_loss 0.950 at epoch 23, 1.511 at 200), early epochs
rank λ backwards (Spearman −0.64 to −0.69 at epochs 1, 3, 9 with the final ranking of 11
settings; +0.85 at 81), and a λ that helps from trained weights kills the network from
scratch (λ₂ = 0.1 by the penalty: ln 3 from scratch, 0.887 warm-started from the λ = 0
weights; 41 of the grid's 72 penalty and proximal points end within 0.001 of ln 3). Checked
first (one trial each, 2026-11): λ barely matters on ``breast_cancer_logreg`` (val_loss 0.0620 at
λ = 0, 0.0618 at best, val_fraction 0.5) nor on ``diabetes_linear`` (0.510 → 0.502), nor on
examples/digits_cnn.yaml as it is (300 images, 60 epochs: every λ tried was worse than
λ = 0), while ``digits_cnn`` on 150 images for 150 epochs overfits: 0.320 at λ = 0, 0.300 at
λ₂ = 3e-4 — 6 × the 1 % tolerance.

    python bench/time_to_lambda.py --quick                 # smoke test: 2 seeds, 3×3 grid, short
    python bench/time_to_lambda.py --workloads digits sparse_regression --markdown out.md
    python bench/time_to_lambda.py --resume --strategies default default+population
    python bench/time_to_lambda.py --reuse-grid --strategies tpe path   # grid from the JSON
    python bench/time_to_lambda.py --score-only --markdown out.md       # a run cut short
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

if TYPE_CHECKING:
    import optuna
    from rich.table import Table

    from regcore.spec import SweepSpec

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.01
GRID_TARGET, TPE_TARGET = 1 / 20, 1 / 2
SIX = ["weight_decay", "decoupled", "loss", "hook", "fused", "proximal"]
GRID_METHODS = ["loss", "decoupled", "proximal"]  # one method of each class
PATH_OPTIONS = {"points": 8, "epochs_fraction": 0.1, "patience": 3, "stop_after_worse": 2}
Record = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Setup:
    """A workload where λ matters: the spec's sections every strategy shares."""

    workload: dict[str, Any]
    l1: tuple[float, float]
    l2: tuple[float, float]
    optimizer: dict[str, Any]
    training: dict[str, Any]
    objective: dict[str, str]
    quick_epochs: int
    weight: float  # ms per epoch measured here (1 torch thread, shared CPU): orders the runs

    def base(self, quick: bool) -> dict[str, Any]:
        epochs = self.quick_epochs if quick else self.training["epochs"]
        return {
            "workload": self.workload,
            "optimizer": self.optimizer,
            "training": {**self.training, "epochs": epochs, "seed": 0, "device": "cpu"},
            "objectives": [self.objective],
        }


VAL_LOSS = {"metric": "val_loss", "direction": "minimize"}
WORKLOADS: dict[str, Setup] = {
    "digits": Setup(
        workload={"name": "digits_mlp", "params": {"hidden": [512, 512], "train_size": 150}},
        l1=(1e-6, 1e-2),
        l2=(1e-6, 1e-1),
        optimizer={"name": "adam", "lr": 1e-3},
        training={"epochs": 200, "batch_size": 32},
        objective=VAL_LOSS,
        quick_epochs=30,
        weight=30,
    ),
    "sparse_regression": Setup(
        workload={
            "name": "sparse_regression",
            "params": {"n_samples": 500, "n_features": 100, "n_informative": 10, "noise": 0.5},
        },
        l1=(1e-5, 1.0),
        l2=(1e-5, 1.0),
        optimizer={"name": "adam", "lr": 0.01},
        training={"epochs": 60, "batch_size": 64},
        objective=VAL_LOSS,
        quick_epochs=30,
        weight=3,
    ),
    "digits_cnn": Setup(
        workload={"name": "digits_cnn", "params": {"hidden": [16, 32], "train_size": 150}},
        l1=(1e-6, 1e-2),
        l2=(1e-6, 1e-1),
        optimizer={"name": "adam", "lr": 1e-3},
        training={"epochs": 150, "batch_size": 32},
        objective=VAL_LOSS,
        quick_epochs=20,
        weight=21,
    ),
    # Wide, noisy tabular (regcore/workloads/_noisy_tabular.py): λ = 0 overfits (val_loss
    # 0.950 at epoch 23, 1.511 at 200), early epochs rank λ backwards (Spearman −0.64 to
    # −0.69 with the final ranking at epochs 1–9), and λ₁ ≥ 4e-3 or λ₂ ≥ 0.1 by the penalty
    # kills the network from scratch (val_loss ln 3) but not from trained weights. Its best is
    # narrow, next to that cliff: plain TPE got within 1 % on 1 of 5 seeds in 30 trials.
    "noisy_tabular": Setup(
        workload={
            "name": "noisy_tabular",
            "params": {
                "n_samples": 600,
                "n_features": 300,
                "n_informative": 8,
                "label_noise": 0.2,
                "class_sep": 3.0,
                "hidden": [256, 256],
            },
        },
        l1=(1e-5, 1e-1),
        l2=(1e-5, 1.0),
        optimizer={"name": "adam", "lr": 1e-4},
        training={"epochs": 200, "batch_size": 32},
        objective=VAL_LOSS,
        quick_epochs=30,
        weight=18,
    ),
}


@dataclass(frozen=True, kw_only=True)
class Job:
    """One run of one strategy (what a child process of this script does)."""

    workload: str
    strategy: str
    seed: int
    trials: int
    grid_points: int
    quick: bool
    threads: int
    # The grid's best: a search ends once a from-scratch trial is within 1 % of it (what comes
    # after cannot change its epochs to 1 %); None runs the whole budget.
    target: float | None = None
    workers: int = 1  # regsweep's worker processes (the grid's points are independent)

    @property
    def setup(self) -> Setup:
        return WORKLOADS[self.workload]

    def config(self) -> dict[str, Any]:
        """What a stored result must have been run with to be reused."""
        d = {k: v for k, v in asdict(self).items() if k not in ("threads", "workers")}
        if self.strategy == "grid":
            d.pop("trials")
        return {**d, "spec": self.setup.base(self.quick)}


# -- specs and records ------------------------------------------------------------------------


def log_range(bounds: tuple[float, float]) -> dict[str, Any]:
    return {"low": bounds[0], "high": bounds[1], "log": True}


def log_points(bounds: tuple[float, float], n: int) -> list[float]:
    low, high = bounds
    return [float(f"{low * (high / low) ** (i / max(1, n - 1)):.3g}") for i in range(n)]


def sweep_spec(
    job: Job, *, space: dict[str, Any], sampler: dict[str, Any] | None = None, **rest: Any
) -> SweepSpec:
    """A regsweep spec of ``job``; without ``sampler`` it names only the sampler's seed and
    (unless ``rest`` does) no pruner: whatever regsweep's defaults are when it runs."""
    from regcore.spec import parse_spec

    raw = {
        **job.setup.base(job.quick),
        "name": f"ttl-{job.workload}-{job.strategy.replace('+', '-')}-{job.seed}",
        "search_space": space,
        "sampler": {"seed": job.seed, **(sampler or {})},
        # The bench measures the search: re-training the best with new seeds is not part
        # of its epochs to 1 %, whatever regsweep's default for confirm is.
        "confirm": {"seeds": 0},
        **rest,
    }
    return parse_spec(raw)


def grid_spec(job: Job) -> SweepSpec:
    n = job.grid_points
    space = {
        "l1": {"choices": log_points(job.setup.l1, n)},
        "l2": {"choices": log_points(job.setup.l2, n)},
        "method": GRID_METHODS,
    }
    budget = {"n_trials": len(GRID_METHODS) * n * n + 1}  # + the λ = 0 baseline
    return sweep_spec(
        job, space=space, sampler={"name": "grid"}, pruner={"name": "none"}, budget=budget
    )


def record(trial: optuna.trial.FrozenTrial) -> Record:
    """What this bench keeps of a trial (either kind of run). Whether it counts as found is
    regsweep's own rule (``regcore.trial_kinds``: trained from scratch with the search's seed;
    a plain Optuna trial is a search trial)."""
    from regcore.trial_kinds import kind_of, rules_of

    attrs, params = trial.user_attrs, trial.params
    method = attrs.get("method", params.get("method"))
    begun, done = trial.datetime_start, trial.datetime_complete
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value if trial.state.name == "COMPLETE" else None,
        "epochs": int(attrs.get("epochs_run", 0)),
        "completed": done.isoformat() if done else None,
        "duration_s": (done - begun).total_seconds() if begun and done else None,
        "scratch": rules_of(trial).from_scratch,
        "kind": kind_of(trial).value,
        "setting": {
            "method": method,
            "method_class": attrs.get("method_class"),
            "l1": float(attrs.get("l1", params.get("l1", 0.0))),
            "l2": float(attrs.get("l2", params.get("l2", 0.0))),
        },
        "role": next((k for k in ("baseline", "path_retrain") if k in attrs), None)
        or ("path point" if "warm_start" in attrs else None),
    }


# -- the strategies ------------------------------------------------------------------------------


def steps_per_epoch(job: Job) -> int:
    from regcore.workloads import Dataset, build_workload

    data = build_workload(job.setup.workload["name"], job.setup.workload["params"]).load_data(
        seed=0
    )
    assert isinstance(data, Dataset)
    return -(-int(data.x_train.shape[0]) // int(job.setup.training["batch_size"]))


def run_regsweep(job: Job, spec: SweepSpec, *, stop: bool = False) -> dict[str, Any]:
    """``spec`` run through the product (one worker, SQLite in a temporary directory).

    With ``stop``, the sweep is stopped as ``regsweep run`` is by Ctrl-C once a trial trained
    from scratch (:func:`record`'s ``scratch``) is within 1 % of ``job.target``; the trial
    then running ends as an interrupted FAIL, after the one that got there.
    """
    import optuna

    from regcore.worker.local import LocalOptions, Progress, run_local_sweep
    from regcore.worker.options import WorkerOptions
    from regcore.worker.probe import ROUNDS, STEPS, WARMUP

    maximize = job.setup.objective["direction"] == "maximize"
    target = job.target if job.target is not None else math.nan
    stopping: list[bool] = []
    storage: list[optuna.storages.RDBStorage] = []  # opened at the first check

    def found(url: str) -> bool:
        if not storage:
            storage.append(optuna.storages.RDBStorage(url))
        study = optuna.load_study(study_name=spec.name, storage=storage[0])
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        return any(r["scratch"] and within(r["value"], target, maximize) for r in map(record, done))

    def watch(url: str, progress: Progress) -> None:
        if not stop or stopping or job.target is None:
            return
        # progress.best counts warm-started path points too: it only says when to look.
        if not within(progress.best, job.target, maximize) or not found(url):
            return
        # Only while run_worker_processes forwards SIGINT to the workers (its handler is in
        # place for as long as they run); after that, the sweep has ended by itself.
        if signal.getsignal(signal.SIGINT) in (signal.default_int_handler, signal.SIG_DFL):
            return
        stopping.append(True)
        signal.raise_signal(signal.SIGINT)

    started, clock = datetime.datetime.now(), time.perf_counter()  # Optuna's local time
    with tempfile.TemporaryDirectory(prefix="regsweep-ttl-") as scratch:
        url = f"sqlite:///{scratch}/sweep.db"
        # run_local_sweep gives each worker cpu_count // workers threads; every run of this
        # bench trains with the same thread count, so values of one setting agree.
        with mock.patch("os.cpu_count", return_value=job.threads * job.workers):
            options = LocalOptions(worker=WorkerOptions(database_url=url), workers=job.workers)
            run = run_local_sweep(spec, options, on_progress=partial(watch, url))
        run_s = time.perf_counter() - clock
        for opened in storage:
            opened.remove_session()
            opened.engine.dispose()
        study = optuna.load_study(study_name=run.study.study_name, storage=url)
        trials = study.get_trials(deepcopy=False)
        probed = any(k.startswith("cost_probe:") for k in study.user_attrs)
    probe_steps = ROUNDS * (WARMUP + STEPS) * (1 + len(spec.methods)) if probed else 0
    return {
        "records": [record(t) for t in trials if t.state.is_finished()],
        "probe_epochs": probe_steps / steps_per_epoch(job),
        "outcome": run.outcome,
        "stopped_at_target": bool(stopping),
        "started": started.isoformat(),
        "run_s": run_s,
        # What the spec resolved to: for the default rows, what the defaults were.
        "resolved": {
            "sampler": spec.sampler.name,
            "pruner": spec.pruner.name,
            "population": spec.execution.population,
            "confirm_seeds": spec.confirm.seeds,
        },
    }


def run_grid(job: Job) -> dict[str, Any]:
    return run_regsweep(job, grid_spec(job))


def run_classes(job: Job) -> dict[str, Any]:
    space = {"l1": log_range(job.setup.l1), "l2": log_range(job.setup.l2), "method": SIX}
    spec = sweep_spec(
        job,
        space=space,
        sampler={"name": "tpe"},
        pruner={"name": "hyperband"},
        budget={"n_trials": job.trials},
    )
    return run_regsweep(job, spec, stop=job.target is not None)


def run_default(job: Job, *, population: bool) -> dict[str, Any]:
    """regsweep as a spec that names no sampler (only its seed), no pruner, no budget and no
    confirm (but ``seeds: 0``) runs it: whatever the defaults are at the time (the budget's
    is 60 trials; a path's points are short ones); with ``population``,
    ``execution: {population: auto}`` too, where the spec allows it."""
    from regcore.spec import SpecError

    space = {"l1": log_range(job.setup.l1), "l2": log_range(job.setup.l2), "method": SIX}
    rest: dict[str, Any] = {}
    if population:
        rest["execution"] = {"population": "auto"}
    try:
        spec = sweep_spec(job, space=space, **rest)
    except SpecError as error:
        if not population:
            raise
        why = str(error).splitlines()[0]
        return {"error": f"skipped: the default spec refuses population auto: {why}"}
    return run_regsweep(job, spec, stop=job.target is not None)


def path_missing() -> str | None:
    from regcore.spec._algorithms import SAMPLERS

    missing = "this tree has no sampler 'path' (regcore/sweeps/path.py)"
    return None if "path" in SAMPLERS else missing


def run_path(job: Job) -> dict[str, Any]:
    space = {"l1": log_range(job.setup.l1), "l2": log_range(job.setup.l2), "method": SIX}
    sampler = {"name": "path", "options": PATH_OPTIONS}
    # A whole path is the dense start, each class's points and the re-train: a budget that
    # cuts it short (--quick's 10 trials) would never re-train, so never count as found.
    whole = 2 + len(GRID_METHODS) * int(PATH_OPTIONS["points"])
    budget = {"n_trials": max(job.trials, whole)}
    spec = sweep_spec(job, space=space, sampler=sampler, pruner={"name": "none"}, budget=budget)
    result = run_regsweep(job, spec)
    if not any(r["role"] == "path point" for r in result["records"]):
        result["error"] = "the sweep ran, but no trial is a path point (no user attr warm_start)"
    return result


def run_plain(job: Job, *, sampler: str, prune: bool) -> dict[str, Any]:
    """Plain Optuna, the user's own loop around ``train_workload`` (no regsweep sweep)."""
    import optuna

    from regcore.regularizers import L1_METHODS
    from regcore.worker.training import DivergedError, train_config, train_workload
    from regcore.workloads import build_workload

    spec = grid_spec(job)  # only its workload, optimizer, training and objective are used
    config = train_config(spec, lr=spec.optimizer.lr)
    workload = build_workload(spec.workload.name, spec.workload.params)
    metric, setup = config.monitor, job.setup

    def objective(trial: optuna.Trial) -> float:
        method = trial.suggest_categorical("method", SIX)
        l1 = trial.suggest_float("l1", *setup.l1, log=True) if method in L1_METHODS else 0.0
        l2 = trial.suggest_float("l2", *setup.l2, log=True)

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            trial.set_user_attr("epochs_run", epoch + 1)
            if prune:
                trial.report(metrics[metric], epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

        result = train_workload(
            workload, l1=l1, l2=l2, method=method, config=config, on_epoch=on_epoch
        )
        return result.metrics[metric]

    samplers = {"random": optuna.samplers.RandomSampler, "tpe": optuna.samplers.TPESampler}
    pruner = (
        optuna.pruners.HyperbandPruner(min_resource=1, max_resource=config.epochs)
        if prune
        else optuna.pruners.NopPruner()
    )
    maximize = setup.objective["direction"] == "maximize"
    stopping: list[bool] = []

    def stop_at_target(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        # Only a completed trial: Optuna gives a pruned one its last intermediate value.
        complete = trial.state == optuna.trial.TrialState.COMPLETE
        if job.target is not None and complete and within(trial.value, job.target, maximize):
            stopping.append(True)
            study.stop()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started, clock = datetime.datetime.now(), time.perf_counter()  # Optuna's local time
    study = optuna.create_study(
        direction=spec.directions[0], sampler=samplers[sampler](seed=job.seed), pruner=pruner
    )
    study.optimize(
        objective, n_trials=job.trials, catch=(DivergedError,), callbacks=[stop_at_target]
    )
    return {
        "records": [record(t) for t in study.trials],
        "probe_epochs": 0.0,
        "stopped_at_target": bool(stopping),
        "started": started.isoformat(),
        "run_s": time.perf_counter() - clock,
    }


@dataclass(frozen=True, kw_only=True)
class Strategy:
    run: Callable[[Job], dict[str, Any]]
    missing: Callable[[], str | None] = lambda: None  # why it cannot run here, if it cannot


STRATEGIES: dict[str, Strategy] = {
    "grid": Strategy(run=run_grid),  # the reference: its best is the target
    "random": Strategy(run=partial(run_plain, sampler="random", prune=False)),
    "tpe": Strategy(run=partial(run_plain, sampler="tpe", prune=False)),  # the one to beat
    "tpe+hyperband": Strategy(run=partial(run_plain, sampler="tpe", prune=True)),
    "classes+tpe+hyperband": Strategy(run=run_classes),
    "path": Strategy(run=run_path, missing=path_missing),
    # What a spec without sampler and pruner runs, alone and in populations (wall clock).
    "default": Strategy(run=partial(run_default, population=False)),
    "default+population": Strategy(run=partial(run_default, population=True)),
}


# -- scoring -------------------------------------------------------------------------------------


def within(value: float | None, target: float, maximize: bool) -> bool:
    if value is None:
        return False
    slack = TOLERANCE * abs(target)
    return value >= target - slack if maximize else value <= target + slack


def in_order(records: list[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r["completed"] or "", r["number"]))


def reach(
    ordered: list[Record],
    probe: float,
    target: float,
    maximize: bool,
    clock: list[float | None],
) -> dict[str, Any]:
    """Epochs (and trials, and seconds: ``clock``, per trial of ``ordered``) spent until the
    first from-scratch trial within 1 % of ``target``."""
    spent = probe
    for i, r in enumerate(ordered, start=1):
        spent += r["epochs"]
        if r["scratch"] and within(r["value"], target, maximize):
            return {"epochs": spent, "trials": i, "seconds": clock[i - 1]}
    return {"epochs": None, "trials": None, "seconds": None}


def run_clock(ordered: list[Record], started: str | None) -> list[float | None]:
    """Wall-clock seconds from a run's start (its cost probe included) to each trial's end;
    None for a run stored without its start."""
    if started is None:
        return [None] * len(ordered)
    start = datetime.datetime.fromisoformat(started)
    return [
        (datetime.datetime.fromisoformat(r["completed"]) - start).total_seconds()
        if r["completed"]
        else None
        for r in ordered
    ]


def replay_clock(ordered: list[Record]) -> list[float | None]:
    """A replayed grid order's seconds: its trials' durations added up, as one worker would
    have spent them one after another (the run's own cost probe not included)."""
    clock: list[float | None] = []
    total: float | None = 0.0
    for r in ordered:
        total = None if total is None or r.get("duration_s") is None else total + r["duration_s"]
        clock.append(total)
    return clock


def best_of(records: list[Record], maximize: bool) -> Record | None:
    found = [r for r in records if r["scratch"] and r["value"] is not None]
    if not found:
        return None
    return (max if maximize else min)(found, key=lambda r: r["value"])


def replay_grid(job: Job, records: list[Record], seed: int) -> list[Record]:
    """The run's records in the order the grid sampler with ``seed`` visits them, alone."""
    import optuna

    from regcore.spec.suggest import baseline_params, create_sampler, is_baseline, suggest

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = grid_spec(Job(**{**asdict(job), "seed": seed}))
    by_point = {
        (r["setting"]["method_class"], r["setting"]["l1"], r["setting"]["l2"]): r for r in records
    }
    baseline = next(r for r in records if r["role"] == "baseline")
    study = optuna.create_study(directions=spec.directions, sampler=create_sampler(spec))
    study.enqueue_trial(baseline_params(spec), user_attrs={"baseline": True})
    ordered = []
    for _ in range(spec.budget.n_trials):
        trial = study.ask()
        point = suggest(trial, spec)
        r = baseline if is_baseline(trial) else by_point[point.method_class, point.l1, point.l2]
        ordered.append(r)
        if r["value"] is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, r["value"])
    return ordered


def summarize(
    job: Job, grid: dict[str, Any], runs: dict[str, dict[str, Any]], seeds: int
) -> dict[str, Any]:
    """Per strategy: each seed's epochs to within 1 % of the grid's best, and the medians."""
    maximize = job.setup.objective["direction"] == "maximize"
    best = best_of(grid["records"], maximize)
    assert best is not None, "the grid found no value"
    target = best["value"]
    grid_total = grid["probe_epochs"] + sum(r["epochs"] for r in grid["records"])
    orders = [replay_grid(job, grid["records"], s) for s in range(seeds)]
    real = [r["number"] for r in in_order(grid["records"])]
    strategies: dict[str, Any] = {}
    grid_seeds = {
        str(s): {"records": o, "probe_epochs": grid["probe_epochs"]} for s, o in enumerate(orders)
    }
    for name, per_seed in {"grid": grid_seeds, **runs}.items():
        rows = {}
        for seed, run in per_seed.items():
            if run.get("error"):
                rows[seed] = {"error": run["error"]}
                continue
            ordered = run["records"] if name == "grid" else in_order(run["records"])
            clock = (
                replay_clock(ordered) if name == "grid" else run_clock(ordered, run.get("started"))
            )
            mine = best_of(ordered, maximize)
            rows[seed] = {
                **reach(ordered, run["probe_epochs"], target, maximize, clock),
                "best": None if mine is None else mine["value"],
                "trials_used": len(ordered),
                "epochs_used": run["probe_epochs"] + sum(r["epochs"] for r in ordered),
                "seconds_used": clock[-1] if name == "grid" and clock else run.get("run_s"),
                "probe_epochs": run["probe_epochs"],
                "stopped_at_target": bool(run.get("stopped_at_target")),
            }
        strategies[name] = {"seeds": rows, **medians(list(rows.values()))}
        resolved = [r["resolved"] for r in per_seed.values() if r.get("resolved")]
        if resolved:
            strategies[name]["resolved"] = resolved[0]
        ran = [grid] if name == "grid" else per_seed.values()  # the replays: the grid's run
        commits = sorted({r["commit"] for r in ran if r.get("commit")})
        if commits:
            strategies[name]["commits"] = commits
    baseline = next(r for r in grid["records"] if r["role"] == "baseline")
    return {
        "target": target,
        "target_setting": best["setting"],
        "baseline_value": baseline["value"],
        "grid_total_epochs": grid_total,
        "grid_wall_s": grid.get("run_s", grid.get("wall_s")),
        "grid_workers": grid.get("workers"),
        "grid_replay_seed0_matches_run": [r["number"] for r in orders[0]] == real,
        "strategies": strategies,
    }


def medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return {"error": rows[0]["error"] if rows else "no runs"}
    epochs = [math.inf if r["epochs"] is None else r["epochs"] for r in ok]
    bests = [r["best"] for r in ok if r["best"] is not None]
    # A seed that never got there counts as infinite; it shows as ">its total".
    shown = sorted(ok, key=lambda r: (r["epochs"] is None, r["epochs"] or r["epochs_used"]))
    # Seconds as epochs (a seed that never got there: infinite), where every run has them.
    timed = all(r.get("seconds_used") is not None for r in ok) and all(
        r.get("seconds") is not None for r in ok if r["epochs"] is not None
    )
    seconds = [math.inf if r["epochs"] is None else r["seconds"] for r in ok] if timed else []
    return {
        "median_epochs": statistics.median(epochs),
        "median_seconds": statistics.median(seconds) if timed else None,
        "median_seconds_used": statistics.median(r["seconds_used"] for r in ok) if timed else None,
        "median_unreached_seconds": statistics.median(
            r["seconds_used"] for r in ok if r["epochs"] is None
        )
        if timed and any(r["epochs"] is None for r in ok)
        else None,
        "per_seed": [seed_text(r) for r in shown],
        "min_text": seed_text(shown[0]),
        "max_text": seed_text(shown[-1]),
        "reached": sum(r["epochs"] is not None for r in ok),
        "runs": len(ok),
        "median_best": statistics.median(bests) if bests else None,
        "median_trials_used": statistics.median(r["trials_used"] for r in ok),
        "median_epochs_used": statistics.median(r["epochs_used"] for r in ok),
        "median_unreached_total": statistics.median(
            r["epochs_used"] for r in ok if r["epochs"] is None
        )
        if any(r["epochs"] is None for r in ok)
        else None,
    }


# -- table ---------------------------------------------------------------------------------------


def seed_text(row: dict[str, Any]) -> str:
    """One run's epochs to 1 %, or ">N" (N: all it spent) where it never got there."""
    return f"{row['epochs']:.0f}" if row["epochs"] is not None else f">{row['epochs_used']:.0f}"


def epochs_text(value: float | None, unreached: float | None) -> str:
    """A median of epochs or seconds: ">N" where it is a seed that never got there (N: the
    median of what those seeds spent), "—" where there is none."""
    if value is None:
        return "—"
    if math.isinf(value):
        return f">{unreached:.0f}" if unreached is not None else "—"
    return f"{value:.0f}"


def ratio(value: float, of: float | None) -> float | None:
    if of is None or not of or math.isinf(of):
        return None
    return value / of


def ratio_text(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    return f"1/{1 / value:.1f}" if 0 < value < 1 else f"{value:.2f}"


@dataclass(frozen=True, kw_only=True)
class Row:
    """One strategy's line of a workload's table (the same in the terminal and in markdown)."""

    strategy: str
    error: str | None = None
    epochs: str = ""
    spread: str = ""
    per_seed: str = ""
    of_grid: float | None = None
    of_tpe: float | None = None
    goal: bool = False  # the best search: its ratios are held to the targets
    reached: str = ""
    best: str = ""
    trials: str = ""
    used: str = ""
    seconds: str = ""  # wall clock to 1 % (median)
    seconds_used: str = ""  # wall clock of the whole run (median)


def table_rows(summary: dict[str, Any]) -> list[Row]:
    s = summary["strategies"]
    tpe = s.get("tpe", {}).get("median_epochs")
    # The best search is held to the targets; none is where no median got there.
    searches = {
        k: v
        for k, v in s.items()
        if k != "grid" and "error" not in v and not math.isinf(v["median_epochs"])
    }
    best_search = min(searches, key=lambda k: searches[k]["median_epochs"], default=None)
    rows = []
    for strategy, row in s.items():
        if "error" in row:
            rows.append(Row(strategy=strategy, error=row["error"].strip().splitlines()[-1][:120]))
            continue
        rows.append(
            Row(
                strategy=strategy,
                epochs=epochs_text(row["median_epochs"], row["median_unreached_total"]),
                spread=f"{row['min_text']}–{row['max_text']}",
                per_seed=", ".join(row["per_seed"]),
                of_grid=ratio(row["median_epochs"], summary["grid_total_epochs"]),
                of_tpe=ratio(row["median_epochs"], tpe),
                goal=strategy == best_search,
                reached=f"{row['reached']}/{row['runs']}",
                best=f"{row['median_best']:.4g}" if row["median_best"] is not None else "—",
                trials=f"{row['median_trials_used']:.0f}",
                used=f"{row['median_epochs_used']:.0f}",
                seconds=epochs_text(row.get("median_seconds"), row.get("median_unreached_seconds")),
                seconds_used=epochs_text(row.get("median_seconds_used"), None),
            )
        )
    return rows


def title(name: str, summary: dict[str, Any], args: argparse.Namespace) -> str:
    return (
        f"{name}: training epochs until a trial is within 1 % of the grid's best "
        f"({summary['target']:.4g}); {args.trials} trials × {args.seeds} seeds per search"
    )


def workload_table(name: str, summary: dict[str, Any], args: argparse.Namespace) -> Table:
    from rich.table import Table

    table = Table(title=title(name, summary, args))
    columns = ("strategy", "epochs to 1 %", "min–max", "÷ grid", "÷ tpe", "s to 1 %", "reached")
    for column in (*columns, "best", "trials", "epochs used", "s used"):
        table.add_column(column, justify="left" if column == "strategy" else "right", no_wrap=True)

    def colored(value: float | None, goal: float, row: Row) -> str:
        text = ratio_text(value)
        if not row.goal or value is None:
            return text
        return f"[{'green' if value <= goal else 'red'}]{text}[/]"

    for row in table_rows(summary):
        if row.error is not None:
            table.add_row(row.strategy, f"[yellow]{row.error[:90]}[/]", *[""] * 9)
            continue
        table.add_row(
            f"[bold]{row.strategy}[/]" if row.goal else row.strategy,
            row.epochs,
            row.spread,
            colored(row.of_grid, GRID_TARGET, row),
            colored(row.of_tpe, TPE_TARGET, row),
            row.seconds,
            row.reached,
            row.best,
            row.trials,
            row.used,
            row.seconds_used,
        )
    return table


def setting_text(setting: dict[str, Any]) -> str:
    return (
        f"{setting['method_class']} ({setting['method']}) "
        f"λ₁ = {setting['l1']:.3g}, λ₂ = {setting['l2']:.3g}"
    )


def grid_note(summary: dict[str, Any]) -> str:
    base, target = summary["baseline_value"], summary["target"]
    wall, workers = summary.get("grid_wall_s"), summary.get("grid_workers")
    ran = f" in {wall:.0f} s with {workers} workers" if wall is not None and workers else ""
    return (
        f"grid best {target:.4g}: {setting_text(summary['target_setting'])}; λ = 0 gives "
        f"{base:.4g} (the best is {abs(base - target) / abs(base):.1%} better); grid total "
        f"{summary['grid_total_epochs']:.0f} epochs{ran} (its seconds in the table are one "
        "worker's: its trials' durations added up in the replayed order); its replay of "
        "seed 0 is the run's order (with one grid worker): "
        f"{summary['grid_replay_seed0_matches_run']}"
    )


def notes(summary: dict[str, Any]) -> list[str]:
    """What the table alone does not say: the grid, what the default rows ran, the wall
    clock with populations over without, the code each regsweep row ran."""
    s = summary["strategies"]
    lines = [grid_note(summary)]
    for name in ("default", "default+population"):
        if (resolved := s.get(name, {}).get("resolved")) is not None:
            ran = ", ".join(f"{k} {v}" for k, v in resolved.items())
            lines.append(f"{name} ran {ran}")
    alone, together = s.get("default", {}), s.get("default+population", {})
    if "median_epochs" in alone and "median_epochs" in together:
        parts = [
            f"{what} {ratio_text(ratio(together[key], alone[key]))}"
            for what, key in (
                ("epochs to 1 %", "median_epochs"),
                ("seconds to 1 %", "median_seconds"),
                ("seconds in all", "median_seconds_used"),
            )
            if together.get(key) is not None and alone.get(key) is not None
        ]
        lines.append("default+population ÷ default (medians): " + ", ".join(parts))
    by_code: dict[str, list[str]] = {}
    for name, row in s.items():
        by_code.setdefault(" and ".join(row.get("commits", [])) or "?", []).append(name)
    if list(by_code) != ["?"]:
        code = "; ".join(f"{', '.join(names)}: {commit}" for commit, names in by_code.items())
        lines.append(f"code the runs imported (git HEAD): {code}")
    return lines


def markdown(document: dict[str, Any], args: argparse.Namespace) -> str:
    """Every scored workload's table in markdown (for the README)."""
    commands = " then ".join(f"`{c}`" for c in document.get("commands", [document["command"]]))
    lines = [
        f"{commands} — {document['date']}, {document['platform']}, "
        f"{document['cpu_count']} CPUs (load average {document.get('load', '?')}), "
        f"torch {document['torch']}, {document.get('wall_s', 0) / 60:.0f} min.",
        "",
        "Training epochs until a trial trained from scratch is within 1 % of the best of the "
        f"{args.grid} × {args.grid} λ₁ × λ₂ grid per method class; median over {args.seeds} "
        "sampler seeds (a seed that never got there counts as infinite and shows as >its total "
        f"epochs). Each search has {args.trials} trials"
        + (
            " and ends once it got there (so `best` and `epochs used` are up to then)."
            if not args.full_budget
            else "."
        )
        + " ÷ grid: over the whole grid's epochs (target ≤ 1/20); ÷ tpe: over plain TPE's "
        "median (target ≤ 1/2). s to 1 %, s used: wall-clock seconds (medians) to get there "
        "and in all, on a machine the runs share: compare rows of one run.",
    ]
    header = (
        "| strategy | epochs to 1 % | per seed | ÷ grid | ÷ tpe | s to 1 % | reached | best "
        "| trials | epochs used | s used |"
    )
    for name, entry in document["workloads"].items():
        summary = entry.get("summary")
        if summary is None:
            continue
        lines += ["", f"**{title(name, summary, args)}**", "", header, "|" + "---|" * 11]
        for row in table_rows(summary):
            if row.error is not None:
                lines.append(f"| {row.strategy} | {row.error} |" + " |" * 9)
                continue
            strategy = f"**{row.strategy}**" if row.goal else row.strategy
            cells = (
                strategy,
                row.epochs,
                row.per_seed,
                ratio_text(row.of_grid),
                ratio_text(row.of_tpe),
                row.seconds,
                row.reached,
                row.best,
                row.trials,
                row.used,
                row.seconds_used,
            )
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", *(f"{note}." for note in notes(summary))]
    return "\n".join(lines) + "\n"


# -- running the jobs ----------------------------------------------------------------------------


def code_state() -> str:
    """The commit the checkout is at, and whether the code a run imports has uncommitted
    changes (several people edit this checkout at once: a run may not be the commit's)."""

    def git(*command: str) -> str:
        done = subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else "?"

    head = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--", "regcore", "worker", "bench/time_to_lambda.py")
    return f"{head} + uncommitted changes" if changed else head


# A run that failed on code that does not import (someone's edit half done in the shared
# checkout) is tried again this many times, this long apart, before its error is kept.
BROKEN_TREE = ("ModuleNotFoundError", "ImportError", "SyntaxError", "IndentationError")
RETRIES, RETRY_WAIT_S = 5, 120.0


def run_job(job: Job) -> dict[str, Any]:
    """``job`` in a child process of this script: its result, or its error."""
    threads = str(job.threads)
    environment = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    command = [sys.executable, str(Path(__file__).resolve()), "--job", json.dumps(asdict(job))]
    for retry in range(RETRIES + 1):
        ran = {"commit": code_state(), "workers": job.workers, "threads": job.threads}
        started = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
        wall_s = time.perf_counter() - started
        if done.returncode == 0:
            result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            return {**result, "wall_s": wall_s, "retries": retry, **ran}
        if retry == RETRIES or not any(name in done.stderr for name in BROKEN_TREE):
            break
        time.sleep(RETRY_WAIT_S)
    error = done.stderr.strip()[-2000:] or f"exit {done.returncode}"
    return {"error": error, "wall_s": wall_s, "retries": retry, **ran}


def job_for(
    args: argparse.Namespace, workload: str, strategy: str, seed: int, target: float | None = None
) -> Job:
    return Job(
        workload=workload,
        strategy=strategy,
        seed=seed,
        trials=args.trials,
        grid_points=args.grid,
        quick=args.quick,
        threads=args.threads,
        target=None if args.full_budget or strategy == "grid" else target,
        workers=args.grid_workers if strategy == "grid" else 1,
    )


def current(stored: dict[str, Any] | None, job: Job) -> bool:
    """Whether ``stored`` is a result of ``job``'s configuration."""
    return stored is not None and stored.get("config") == job.config()


def grid_target(args: argparse.Namespace, name: str, entry: dict[str, Any]) -> float | None:
    """The best of the workload's stored grid run (None if it has none of this config)."""
    grid = entry.get("grid")
    if not current(grid, job_for(args, name, "grid", 0)) or grid is None or grid.get("error"):
        return None
    maximize = WORKLOADS[name].objective["direction"] == "maximize"
    best = best_of(grid["records"], maximize)
    return None if best is None else float(best["value"])


Task = tuple[str, str, int]  # workload, strategy, seed


def plan(args: argparse.Namespace, document: dict[str, Any]) -> list[Task]:
    """The runs to do, in the order they are taken up: by ``--workloads``, its grid first,
    then seed by seed (a run cut short has every strategy of fewer seeds). A grid kept by
    ``--reuse-grid``/``--resume`` is not run again."""
    tasks: list[Task] = []
    for name in args.workloads:
        entry = document["workloads"].setdefault(name, {"grid": None, "runs": {}})
        keep = args.reuse_grid or args.resume
        if not (keep and grid_target(args, name, entry) is not None):
            entry["grid"] = None  # to run (its searches wait for it)
            tasks.append((name, "grid", 0))
        for seed in range(args.seeds):
            tasks += [(name, s, seed) for s in STRATEGIES if s != "grid" and s in args.strategies]
    return tasks


def ready(
    args: argparse.Namespace, document: dict[str, Any], task: Task
) -> tuple[Job | None, bool]:
    """``task``'s job if it can run now, and whether the task is settled (run now, kept from
    the JSON, skipped, or dropped because its grid failed) rather than waiting on its grid."""
    name, strategy, seed = task
    if strategy == "grid":
        return job_for(args, name, strategy, seed), True
    entry = document["workloads"][name]
    if entry["grid"] is None:
        return None, False  # its grid is still to run: its target is not known yet
    target = grid_target(args, name, entry)
    if target is None:
        return None, True  # the grid failed: nothing to score against
    runs = entry["runs"].setdefault(strategy, {})
    job, stored = job_for(args, name, strategy, seed, target), runs.get(str(seed))
    if args.resume and current(stored, job) and not stored.get("error"):
        return None, True
    if (why := STRATEGIES[strategy].missing()) is not None:
        runs[str(seed)] = {"error": f"skipped: {why}", "config": job.config()}
        return None, True
    return job, True


def scored_runs(args: argparse.Namespace, name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Every stored search run of this configuration (also of strategies not run this time)."""
    target = grid_target(args, name, entry)
    runs: dict[str, Any] = {}
    for strategy, stored in entry["runs"].items():
        seeds = {
            str(seed): stored[str(seed)]
            for seed in range(args.seeds)
            if current(stored.get(str(seed)), job_for(args, name, strategy, seed, target))
        }
        if seeds:
            runs[strategy] = seeds
    return {s: runs[s] for s in STRATEGIES if s in runs}


def run_all(
    args: argparse.Namespace,
    tasks: list[Task],
    document: dict[str, Any],
    save: Callable[[], None],
    log: Callable[[str], None],
) -> None:
    """``tasks`` on ``args.jobs`` threads, each running one child process at a time: each
    takes the first task that can run (a search once its workload's grid has run)."""
    pending = list(tasks)
    changed = threading.Condition()

    def take() -> Job | None:
        with changed:
            while pending:
                for task in list(pending):
                    job, settled = ready(args, document, task)
                    if settled:
                        pending.remove(task)
                    if job is not None:
                        return job
                if pending:
                    changed.wait()
            return None

    def one(job: Job) -> None:
        result = {**run_job(job), "config": job.config()}
        with changed:
            entry = document["workloads"][job.workload]
            if job.strategy == "grid":
                entry["grid"] = result
            else:
                entry["runs"].setdefault(job.strategy, {})[str(job.seed)] = result
            save()
            changed.notify_all()
            records = result.get("records", [])
            epochs = result.get("probe_epochs", 0) + sum(r["epochs"] for r in records)
            status = f"[red]failed: {result['error'][-300:]}[/]" if result.get("error") else ""
            stopped = " (stopped at the target)" if result.get("stopped_at_target") else ""
            retried = f" (run {result['retries'] + 1} times)" if result.get("retries") else ""
            log(
                f"{time.strftime('%H:%M:%S')} {job.workload} {job.strategy} seed {job.seed}: "
                f"{len(records)} trials, {epochs:.0f} epochs, {result['wall_s']:.0f} s"
                f"{stopped}{retried} {status}"
            )

    def worker() -> None:
        while (job := take()) is not None:
            one(job)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for future in [pool.submit(worker) for _ in range(args.jobs)]:
            future.result()


# -- command line --------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    import torch

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/time_to_lambda.py", *sys.argv[1:]]),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument(
        "--strategies", nargs="+", choices=list(STRATEGIES), default=list(STRATEGIES)
    )
    parser.add_argument("--seeds", type=int, default=5, help="sampler seeds 0..N-1 per search")
    parser.add_argument("--trials", type=int, default=30, help="budget of every search run")
    parser.add_argument("--grid", type=int, default=6, help="λ values per axis of the grid")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (each one process)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every run")
    parser.add_argument(
        "--grid-workers",
        type=int,
        default=2,
        help="regsweep workers of a grid run (its order is then the replay's, not the run's)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="2 seeds, 10 trials, 3×3 grid, short training"
    )
    parser.add_argument(
        "--full-budget",
        action="store_true",
        help="run every search to its budget (default: end it once it is within 1 %% of the "
        "grid's best, which leaves its epochs to 1 %% as they are)",
    )
    parser.add_argument(
        "--reuse-grid", action="store_true", help="keep the JSON's grid run of the same config"
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep every stored run of the same config"
    )
    parser.add_argument("--out", type=Path, help="default bench/results/time_to_lambda.json")
    parser.add_argument("--markdown", type=Path, help="also write the tables there, in markdown")
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="run nothing: score what the JSON holds of this config (implies --resume)",
    )
    parser.add_argument("--job", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.resume = args.resume or args.score_only
    if args.quick:
        args.seeds, args.trials, args.grid = min(args.seeds, 2), min(args.trials, 10), 3
    if args.out is None:
        name = "time_to_lambda_quick.json" if args.quick else "time_to_lambda.json"
        args.out = (
            Path(tempfile.gettempdir()) / name if args.quick else ROOT / "bench" / "results" / name
        )
    for key in ("seeds", "trials", "jobs", "threads", "grid_workers"):
        if getattr(args, key) < 1:
            parser.error(f"--{key} must be >= 1, but got {getattr(args, key)}")
    if args.grid < 2:
        parser.error(f"--grid must be >= 2, but got {args.grid}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args.job is not None:
        import torch

        job = Job(**json.loads(args.job))
        torch.set_num_threads(job.threads)
        print(json.dumps(STRATEGIES[job.strategy].run(job)))
        return 0

    from rich.console import Console

    console = Console() if Console().is_terminal else Console(width=170)
    document: dict[str, Any] = {"workloads": {}}
    if (args.reuse_grid or args.resume) and args.out.exists():
        document = json.loads(args.out.read_text())
    # Time and commands add up over --resume/--reuse-grid runs (a stored run is not redone).
    before_s = float(document.get("wall_s", 0.0))
    if not args.score_only:  # else the date, command and load of the run that measured it
        commands = [
            *document.get("commands", [document["command"]] if document.get("command") else [])
        ]
        document.update(environment(), args={k: str(v) for k, v in vars(args).items()})
        document["commands"] = [*commands, document["command"]]

    started = time.perf_counter()

    def save() -> None:
        if not args.score_only:  # what a run cut short had measured is saved with its time
            document["wall_s"] = before_s + time.perf_counter() - started
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")

    if args.score_only:
        for name in args.workloads:
            document["workloads"].setdefault(name, {"grid": None, "runs": {}})
    tasks = [] if args.score_only else plan(args, document)
    console.print(f"[bold]{document['command']}[/]: up to {len(tasks)} runs, {args.jobs} at a time")
    run_all(args, tasks, document, save, console.print)
    if not args.score_only:
        document["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    for name in args.workloads:
        entry = document["workloads"][name]
        if entry["grid"] is None or entry["grid"].get("error"):
            console.print(f"[red]{name}: the grid failed; nothing to score[/]")
            continue
        runs = scored_runs(args, name, entry)
        job = job_for(args, name, "grid", 0)
        summary = entry["summary"] = summarize(job, entry["grid"], runs, args.seeds)
        console.print()
        console.print(workload_table(name, summary, args))
        for note in notes(summary):
            console.print(note)
    save()
    if args.markdown is not None:
        args.markdown.write_text(markdown(document, args))
        console.print(f"wrote {args.markdown}")
    console.print(f"measured in {document.get('wall_s', 0):.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
