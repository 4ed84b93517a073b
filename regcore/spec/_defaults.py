"""The search a spec gets when it names no sampler or no pruner: path mode where the space
allows it, else TPE; never a pruner. Chosen from the raw spec, before it is checked."""

from __future__ import annotations

from typing import Any

from regcore.workloads import TrainingFunction, WorkloadError, get_workload


def default_search_filled(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the default strategy where it names no sampler or no pruner (a
    ``sampler: {seed: 3}`` keeps its seed). Options without a name are the options of
    the sampler's and pruner's own default (TPE, Hyperband), as before there was a path."""
    sampler, pruner = data.get("sampler", {}), data.get("pruner", {})
    if isinstance(sampler, dict) and "name" not in sampler and not sampler.get("options"):
        data = {**data, "sampler": {**default_search(data)["sampler"], **sampler}}
    if isinstance(pruner, dict) and "name" not in pruner and not pruner.get("options"):
        data = {**data, "pruner": {"name": "none", **pruner}}  # a default that prunes none
    return data


def default_search(data: dict[str, Any]) -> dict[str, Any]:
    """What a spec that names no sampler runs (bench/time_to_lambda.py measured it): path
    mode where the space allows it (λ as log ranges, nothing else searched, one objective,
    one trial at a time, a loop that can warm-start), without a pruner; else TPE, without a
    pruner too (early epochs rank λ wrongly when its benefit shows late). Read off the raw
    spec: a part that is invalid is reported as such, whatever is chosen here."""
    tpe = {"sampler": {"name": "tpe"}, "pruner": {"name": "none"}}
    space = data.get("search_space")
    objectives = data.get("objectives")
    execution = data.get("execution")
    if not isinstance(space, dict) or (isinstance(objectives, list) and len(objectives) > 1):
        return tpe
    if isinstance(execution, dict) and execution.get("population", 1) != 1:
        return tpe
    lambdas = [space.get(n) for n in ("l1", "l2")]
    ranges = [v for v in lambdas if isinstance(v, dict)]
    if not ranges or not all(v.get("log") is True for v in ranges):
        return tpe  # a path walks log ranges; choices, a linear range or no range: sample
    if not all(isinstance(v, dict | int | float) for v in lambdas):
        return tpe
    params = space.get("params") or {}
    searched = isinstance(params, dict) and any(isinstance(v, dict) for v in params.values())
    if isinstance(space.get("lr"), dict) or searched:
        return tpe
    workload = data.get("workload")
    name = workload.get("name") if isinstance(workload, dict) else None
    try:
        kind = get_workload(name) if isinstance(name, str) else None
    except WorkloadError:
        kind = None
    if kind is None:
        return tpe
    if isinstance(kind, TrainingFunction) and not kind.warm_start:
        return tpe
    return {"sampler": {"name": "path"}, "pruner": {"name": "none"}}
