"""SweepSpec: what a sweep searches and how, as JSON or YAML (the README's "Sweeps").

Pure data and validation: nothing here imports Optuna, except to check ``sampler.options``
against its constructors. A minimal spec::

    name: digits-l1-vs-l2
    workload: {name: digits_mlp, params: {hidden: [128]}}
    search_space:
      l1: {low: 1.0e-6, high: 1.0e-2, log: true}   # or a number, or {choices: [0, 1.0e-4]}
      l2: {low: 1.0e-6, high: 1.0e-2, log: true}
      method: [weight_decay, decoupled, loss, hook, fused, proximal]   # or one name

Read it with ``spec = load_spec("sweep.yaml")`` (or ``parse_spec(data)``); the sweep engine
reads ``spec.methods``, ``spec.directions`` and ``spec.is_multi_objective``.

Samplers and pruners are rows of one table each (``regcore.spec._algorithms``): their names,
options and rules, and what ``create_sampler`` / ``create_pruner`` build, come from there.

Every invalid spec raises :class:`SpecError`, whose ``problems`` name each field at fault
(``training.epochs``, ``workload.params.hidden``) and what to write instead.
"""

from regcore.spec._load import load_spec, parse_spec
from regcore.spec._notify import NotifySpec, redact_secrets
from regcore.spec._problems import SpecError, SpecProblem
from regcore.spec._sections import (
    RUNNER_METRICS,
    BudgetSpec,
    ConfirmSpec,
    ObjectiveSpec,
    PrunerSpec,
    SamplerSpec,
    WorkloadSpec,
)
from regcore.spec._space import Choices, Range, SearchSpace
from regcore.spec._sweep import SweepSpec
from regcore.spec._training import (
    SCHEDULES,
    EarlyStoppingSpec,
    ExecutionSpec,
    OptimizerSpec,
    RegularizeSpec,
    SchedulerSpec,
    TrainingSpec,
)

__all__ = [
    "RUNNER_METRICS",
    "SCHEDULES",
    "BudgetSpec",
    "Choices",
    "ConfirmSpec",
    "EarlyStoppingSpec",
    "ExecutionSpec",
    "NotifySpec",
    "ObjectiveSpec",
    "OptimizerSpec",
    "PrunerSpec",
    "Range",
    "RegularizeSpec",
    "SamplerSpec",
    "SchedulerSpec",
    "SearchSpace",
    "SpecError",
    "SpecProblem",
    "SweepSpec",
    "TrainingSpec",
    "WorkloadSpec",
    "load_spec",
    "parse_spec",
    "redact_secrets",
]
