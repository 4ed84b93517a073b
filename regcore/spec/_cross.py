"""Rules between the sections of a spec: the grid sampler, multi-objective studies, and the
objectives a workload can report.

Each rule reads a few facts (the sampler's name, the number of objectives, ...). A fact is
taken from the raw data whenever it is valid on its own, so a spec with problems elsewhere
still hears about these.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import InitErrorDetails

from regcore.spec._algorithms import (
    PRUNERS,
    SAMPLERS,
    range_samplers,
    two_objective_pruners,
    two_objective_samplers,
)
from regcore.spec._base import SpecModel
from regcore.spec._problems import listing, problem, suggest
from regcore.spec._sections import (
    RUNNER_MAXIMIZE,
    RUNNER_METRICS,
    ObjectiveSpec,
    PrunerSpec,
    SamplerSpec,
)
from regcore.spec._space import Lambda, LearningRate, Range
from regcore.workloads import available_workloads, get_workload

_DIMS: dict[str, TypeAdapter[Any]] = {
    "l1": TypeAdapter(Lambda),
    "l2": TypeAdapter(Lambda),
    "lr": TypeAdapter(LearningRate),
}
_OBJECTIVE = TypeAdapter(ObjectiveSpec)


@dataclass(frozen=True, kw_only=True)
class Facts:
    workload: str | None = None  # a registered workload's name
    dims: dict[str, Any] = field(default_factory=dict)  # the valid ones of l1, l2, lr
    sampler: str | None = None
    pruner: str | None = None
    n_objectives: int | None = None
    objectives: dict[int, ObjectiveSpec] = field(default_factory=dict)  # the valid ones


def _name(
    data: dict[str, Any], section: str, model: type[SpecModel], known: Container[str]
) -> str | None:
    """The section's name where it is one of ``known`` (the model's default where unset)."""
    raw = data.get(section, {})
    name = raw.get("name", model.model_fields["name"].default) if isinstance(raw, dict) else None
    return name if isinstance(name, str) and name in known else None


def _valid(adapter: TypeAdapter[Any], value: Any) -> tuple[bool, Any]:
    try:
        return True, adapter.validate_python(value)
    except ValidationError:
        return False, None


def facts_of_raw(data: dict[str, Any], *, default_objectives: int) -> Facts:
    """The facts that are valid on their own in ``data`` (a spec with problems)."""
    space = data.get("search_space")
    dims = {}
    for dim, adapter in _DIMS.items():
        if isinstance(space, dict) and dim in space:
            ok, value = _valid(adapter, space[dim])
            if ok:
                dims[dim] = value
    raw = data.get("objectives")
    objectives, n_objectives = {}, default_objectives if raw is None else None
    if isinstance(raw, list):
        n_objectives = len(raw)
        for i, entry in enumerate(raw):
            ok, value = _valid(_OBJECTIVE, entry)
            if ok:
                objectives[i] = value
    workload = data.get("workload")
    name = workload.get("name") if isinstance(workload, dict) else None
    return Facts(
        workload=name if isinstance(name, str) and name in available_workloads() else None,
        dims=dims,
        sampler=_name(data, "sampler", SamplerSpec, SAMPLERS),
        pruner=_name(data, "pruner", PrunerSpec, PRUNERS),
        n_objectives=n_objectives,
        objectives=objectives,
    )


def _grid_values(dim: Range) -> str:
    if dim.log:
        values = [dim.low * (dim.high / dim.low) ** (i / 4) for i in range(5)]
    else:
        values = [dim.low + (dim.high - dim.low) * i / 4 for i in range(5)]
    return ", ".join(f"{v:.2g}" for v in values)


def cross_checks(facts: Facts) -> list[InitErrorDetails]:
    """Every problem between sections that ``facts`` are enough to see."""
    details = []
    sampler = SAMPLERS[facts.sampler] if facts.sampler is not None else None
    if sampler is not None and sampler.listed_values:
        for dim, value in facts.dims.items():
            if isinstance(value, Range):
                text = (
                    f"the {sampler.name} sampler needs listed values, but {dim} is a range; write "
                    f"e.g. {{choices: [{_grid_values(value)}]}}, or use another sampler "
                    f"({', '.join(range_samplers()[:2])})"
                )
                details.append(problem(("search_space", dim), text, value.model_dump()))
    if facts.n_objectives == 2:
        if facts.pruner is not None and not PRUNERS[facts.pruner].two_objectives:
            text = (
                "Optuna's pruners are single-objective, but this spec has 2 objectives; set "
                f"pruner: {{name: {two_objective_pruners()[0]}}} or keep one objective"
            )
            details.append(problem(("pruner", "name"), text, facts.pruner))
        if sampler is not None and not sampler.two_objectives:
            text = (
                f"{sampler.name} is single-objective; use "
                f"{listing(two_objective_samplers())} for 2 objectives"
            )
            details.append(problem(("sampler", "name"), text, facts.sampler))
        first, second = facts.objectives.get(0), facts.objectives.get(1)
        if first is not None and second is not None and first.metric == second.metric:
            text = f"{second.metric!r} is already the first objective; choose another metric"
            details.append(problem(("objectives", 1, "metric"), text, second.metric))
    if facts.workload is not None:
        details.extend(_metric_checks(facts.workload, facts.objectives))
    return details


def _metric_checks(workload: str, objectives: dict[int, ObjectiveSpec]) -> list[InitErrorDetails]:
    cls = get_workload(workload)
    known = (*cls.metrics, *RUNNER_METRICS)
    maximize = cls.maximize | RUNNER_MAXIMIZE
    details = []
    for i, objective in objectives.items():
        metric = objective.metric
        if metric not in known:
            text = (
                f"{workload} reports {', '.join(cls.metrics)} and every trial also records "
                f"{', '.join(RUNNER_METRICS)}; got {metric!r}{suggest(metric, known)}"
            )
            details.append(problem(("objectives", i, "metric"), text, metric))
            continue
        best = "maximize" if metric in maximize else "minimize"
        if objective.direction != best:
            better = "larger" if best == "maximize" else "smaller"
            text = f"a {better} {metric} is better, so write direction: {best}"
            details.append(problem(("objectives", i, "direction"), text, objective.direction))
    return details
