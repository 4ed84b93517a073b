"""The cost probe: the training step of each method a sweep chooses between, timed on the
sweep's own model.

Methods of one class train the same model (:func:`regcore.regularizers.method_class`), so a
sweep runs the cheapest; which one that is depends on the model and the device. Before its
first trial of a sweep on a device, a worker times each listed method of every class that
lists several (and no regularizer, for reference; a class of one method runs it whatever it
costs, so timing it would be spent for nothing: on small workloads the probe cost as much
as a trial) for 15 steps of the built-in loop, in two interleaved rounds, and
keeps the median step time in the study's user attribute ``cost_probe:<device>``. Other
workers on the same kind of device read it; the report shows it as the cost of each
implementation (times from trials are not comparable: they ran at different moments on a
machine doing other things). Training functions own their loop: they are not probed, and
their classes run the cheapest method by the cost order of ``METHOD_TABLE`` (docs/regularizers.md).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import threading
from pathlib import Path

import optuna
import torch

from regcore.regularizers import L1_METHODS
from regcore.spec import SweepSpec
from regcore.sweeps.results import COST_PROBE_PREFIX, method_costs
from regcore.worker.device import resolve_device
from regcore.worker.training import train_config, train_workload
from regcore.workloads import TrainingFunction, build_workload, get_workload

_log = logging.getLogger(__name__)

#: Steps timed per method and round, after the warm-up steps (caches, allocator, autotuning):
#: the median of 2 × 15 tells apart what matters (10 % or more), and costs half of 2 × 30.
STEPS, WARMUP, ROUNDS = 15, 5, 2
#: What the probe calls the unregularized step it measures for reference.
NONE = "none"


def device_label(device: torch.device) -> str:
    """Which kind of device a probe is valid for: ``cpu`` or the CUDA card's name."""
    if device.type == "cuda":
        return f"cuda {torch.cuda.get_device_name(device)}"
    return device.type


def choices(spec: SweepSpec) -> list[str]:
    """The methods a sweep chooses between: those of its classes with several methods (a
    class of one runs it whatever it costs, so timing it would be spent for nothing)."""
    return [m for methods in spec.method_classes.values() if len(methods) > 1 for m in methods]


def measure(spec: SweepSpec, *, device: str | None, data_dir: Path | None) -> dict[str, float]:
    """Median ms per training step of each method the sweep chooses between (and of
    ``none``, no regularizer, for reference)."""
    workload = build_workload(spec.workload.name, spec.workload.params, data_dir=data_dir)
    config = train_config(spec, lr=spec.optimizer.lr)
    config = dataclasses.replace(
        config, max_steps=WARMUP + STEPS, epochs=max(config.epochs, WARMUP + STEPS)
    )
    if device is not None:
        config = dataclasses.replace(config, device=device)
    times: dict[str, float] = {}
    for _ in range(ROUNDS):
        for method in (NONE, *choices(spec)):
            l1 = 1e-4 if method in L1_METHODS else 0.0
            l2 = 0.0 if method == NONE else 1e-4
            result = train_workload(
                workload,
                l1=l1,
                l2=l2,
                method="weight_decay" if method == NONE else method,
                config=config,
            )
            median = 1000 * statistics.median(result.step_times_s[WARMUP:])
            times[method] = min(times.get(method, math.inf), median)
    return times


class CostProbes:
    """The probe of each sweep this worker runs, measured once per sweep and device."""

    def __init__(self, *, device: str | None, data_dir: Path | None) -> None:
        self._device = device
        self._data_dir = data_dir
        self._known: dict[str, dict[str, float] | None] = {}
        self._lock = threading.Lock()

    def costs(self, study: optuna.Study, spec: SweepSpec) -> dict[str, float] | None:
        """ms per step by method for ``study`` on this worker's device; None where there is
        nothing to choose (no class with several methods) or a probe is impossible (a
        training function, a failed probe)."""
        if isinstance(get_workload(spec.workload.name), TrainingFunction):
            return None
        if not choices(spec):
            return None
        with self._lock:
            if study.study_name not in self._known:
                self._known[study.study_name] = self._probe(study, spec)
            return self._known[study.study_name]

    def _probe(self, study: optuna.Study, spec: SweepSpec) -> dict[str, float] | None:
        try:
            label = device_label(resolve_device(self._device or spec.training.device))
            recorded = method_costs(study).get(label)
            if recorded is not None and all(m in recorded for m in choices(spec)):
                return recorded
            costs = measure(spec, device=self._device, data_dir=self._data_dir)
            study.set_user_attr(COST_PROBE_PREFIX + label, costs)
        except Exception as exc:  # a failed probe costs the choice, never a trial
            _log.warning("%s: cost probe failed (%s); using the measured order", spec.name, exc)
            return None
        shown = ", ".join(f"{m} {ms:.3g} ms" for m, ms in costs.items())
        _log.info("%s: cost probe on %s: %s", spec.name, label, shown)
        return costs
