"""``execution.population: auto``: how many members a worker trains at once, measured on the
sweep's own model (as the cost probe, :mod:`regcore.worker.probe`, times its methods).

A population pays where one trial's step leaves the device idle (launch overhead on a GPU,
per-step Python on a small model); where one trial's arithmetic already fills it (the digits
MLP on two CPU cores), K members cost K times one and vmap's overhead on top. So the worker
times the single-trial step (the built-in loop, :func:`regcore.worker.training.train_workload`) and
the population's step at K = 2, 4, 8, … on the sweep's model, data, batch and device, and
takes the K with the most member-steps per second, as long as it beats the single trial by
:data:`MARGIN` (else K = 1: never slower than trials one at a time); it stops doubling once
that no longer raises the rate by :data:`GROWTH`, at :data:`MOST`, or on CUDA where half the
free memory would be used (measured per member). The timings are logged; a few hundred steps in all.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import torch

from regcore.regularizers import L1_METHODS
from regcore.spec import SweepSpec
from regcore.worker.device import resolve_device
from regcore.worker.population._trainer import PopulationTrainer
from regcore.worker.training import TrainConfig, train_config, train_workload
from regcore.workloads import Workload, build_workload

_log = logging.getLogger(__name__)
MOST = 64
#: How much faster than one trial at a time a population must step to be chosen: it also
#: evaluates and reports each member every epoch, and timings of a few steps are noisy.
MARGIN = 1.25
#: How much a doubling of K must raise the population's member-steps per second to go on.
GROWTH = 1.1
WARMUP, STEPS = 3, 10


def choose_size(spec: SweepSpec, *, device: str = "auto") -> int:
    """K for ``spec`` on ``device`` (``auto``: the spec's training.device); 1 where no
    population steps faster than one trial by :data:`MARGIN`."""
    resolved = resolve_device(spec.training.device if device == "auto" else device)
    config = dataclasses.replace(train_config(spec, lr=spec.optimizer.lr), device=str(resolved))
    workload = build_workload(spec.workload.name, spec.workload.params)
    method = spec.methods[0]
    most = MOST if resolved.type != "cuda" else _fits_in_memory(workload, method, config)

    def step_s(k: int) -> float:
        if k == 1:
            return _single_step_s(workload, method, config)
        return _population_step_s(workload, method, config, k)

    size, rates = pick(step_s, most=most)
    shown = ", ".join(f"K={k} {rate:.0f}" for k, rate in rates.items())
    _log.info("population auto on %s: K = %d (member-steps/s: %s)", resolved, size, shown)
    return size


def pick(step_s: Callable[[int], float], *, most: int) -> tuple[int, dict[int, float]]:
    """The K to train at, and the member-steps per second measured on the way, from
    ``step_s(k)``: seconds per step of K members (K = 1: one trial in the built-in loop),
    asked for K = 1, 2, 4, … up to ``most`` while doubling K still raises the population's
    rate by :data:`GROWTH`.

    Populations are compared with each other to find where doubling stops paying, and only
    the best of them with the single trial: their step is another code path, whose fixed cost
    can make K = 2 slower than one trial while K = 8 is three times faster (a small
    regression on 2 CPU cores).
    """
    rates = {1: 1.0 / step_s(1)}
    best = 0  # the best population's K; 0 while none is measured
    k = 2
    while k <= most:
        rates[k] = k / step_s(k)
        grew = best == 0 or rates[k] >= GROWTH * rates[best]
        if best == 0 or rates[k] > rates[best]:
            best = k
        if not grew:
            break  # past the knee: doubling K no longer pays
        k *= 2
    return (best if best and rates[best] >= MARGIN * rates[1] else 1), rates


def _single_step_s(workload: Workload[Any], method: str, config: TrainConfig) -> float:
    """Seconds of one trial's training step in the built-in loop: the fastest of :data:`STEPS`
    (timeit's rule: other processes only ever add time, so the least is the least disturbed)."""
    steps = dataclasses.replace(
        config, max_steps=WARMUP + STEPS, epochs=max(config.epochs, WARMUP + STEPS)
    )
    result = train_workload(workload, l1=_l1(method), l2=1e-4, method=method, config=steps)
    return min(result.step_times_s[WARMUP:])


def _population_step_s(workload: Workload[Any], method: str, config: TrainConfig, k: int) -> float:
    """Seconds of one step of a K-member population: the fastest of :data:`STEPS`."""
    trainer = PopulationTrainer(workload, method=method, config=config, k=k)
    for slot in range(k):
        trainer.add(slot, l1=_l1(method), l2=1e-4, lr=config.lr)
    sync = _synchronize(trainer.device)
    times = []
    for step in range(WARMUP + STEPS):
        started = time.perf_counter()
        trainer.step_once()
        sync()
        if step >= WARMUP:
            times.append(time.perf_counter() - started)
    return min(times)


def _l1(method: str) -> float:
    return 1e-4 if method in L1_METHODS else 0.0


def _synchronize(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _fits_in_memory(workload: Workload[Any], method: str, config: TrainConfig) -> int:
    """The most members half the CUDA device's free memory holds (one member's training
    step measured), at most :data:`MOST`."""
    device = torch.device(config.device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    trainer = PopulationTrainer(workload, method=method, config=config, k=1)
    trainer.add(0, l1=0.0, l2=0.0, lr=config.lr)
    trainer.step_once()
    per_member = max(1, torch.cuda.max_memory_allocated(device) - before)
    del trainer
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(MOST, int(0.5 * free // per_member)))
