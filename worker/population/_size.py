"""``execution.population: auto``: how many members a worker trains at once.

On CUDA: as many as half the device's free memory holds, at most :data:`MOST`, each costing
what one member's training step was measured to take (parameters, gradients, optimizer
state and activations). On the CPU: :data:`CPU_SIZE`, where `bench/population.py` found
the 2-core machine's throughput levels off (the cores, not memory, are the limit there).
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from regcore.spec import SweepSpec
from regcore.workloads import build_workload
from worker.population._trainer import PopulationTrainer
from worker.training import resolve_device, train_config

_log = logging.getLogger(__name__)
MOST = 64
CPU_SIZE = 8


def choose_size(spec: SweepSpec, *, device: str = "auto") -> int:
    """K for ``spec`` on ``device`` (``auto``: the spec's training.device)."""
    resolved = resolve_device(spec.training.device if device == "auto" else device)
    if resolved.type != "cuda":
        return CPU_SIZE
    config = train_config(spec, lr=spec.optimizer.lr)
    config = dataclasses.replace(config, device=str(resolved))
    workload = build_workload(spec.workload.name, spec.workload.params)
    torch.cuda.synchronize(resolved)
    torch.cuda.reset_peak_memory_stats(resolved)
    before = torch.cuda.memory_allocated(resolved)
    trainer = PopulationTrainer(workload, method=spec.methods[0], config=config, k=1)
    trainer.add(0, l1=0.0, l2=0.0, lr=spec.optimizer.lr)
    trainer.step_once()
    per_member = max(1, torch.cuda.max_memory_allocated(resolved) - before)
    del trainer
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info(resolved)
    size = max(1, min(MOST, int(0.5 * free // per_member)))
    _log.info(
        "population auto on %s: %d members (%.1f MB each, %.1f GB free)",
        resolved,
        size,
        per_member / 1e6,
        free / 1e9,
    )
    return size
