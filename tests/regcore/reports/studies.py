"""Real in-memory Optuna studies whose trials carry what the trial runner records.

Each trial's ``params`` are what the sampler suggested (``weight_decay`` does not sample
``l1``), and its user attributes are the runner's: ``method``, ``l1``, ``l2``, ``lr``,
``baseline``, ``sparsity``, ``median_step_ms``, ``device``, ... (see worker/runner.py).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from regcore.regularizers import L1_METHODS, METHODS
from regcore.spec import parse_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

LOW, HIGH = 1e-6, 1e-2
STEP_MS = {
    "weight_decay": 1.0,
    "decoupled": 1.1,
    "loss": 1.5,
    "hook": 1.7,
    "fused": 1.05,
    "proximal": 1.25,
}


def make_spec(
    name: str = "digits-l1-vs-l2",
    *,
    methods: Sequence[str] = METHODS,
    l1: Any = None,
    objectives: Sequence[tuple[str, str]] = (("val_loss", "minimize"),),
) -> dict[str, Any]:
    """A valid spec's stored JSON dict (the name may be anything, as a stored dict may be)."""
    spec = parse_spec(
        {
            "name": "placeholder",
            "workload": {"name": "digits_mlp"},
            "search_space": {
                "l1": {"low": LOW, "high": HIGH, "log": True} if l1 is None else l1,
                "l2": {"low": LOW, "high": HIGH, "log": True},
                "method": list(methods),
            },
            "objectives": [{"metric": m, "direction": d} for m, d in objectives],
        }
    )
    return {**spec.to_json_dict(), "name": name}


Direction = Literal["minimize", "maximize"]


def make_study(
    name: str = "digits-l1-vs-l2", *, directions: Sequence[Direction] = ("minimize",)
) -> optuna.Study:
    return optuna.create_study(
        study_name=name, storage=optuna.storages.InMemoryStorage(), directions=list(directions)
    )


def loss_at(method: str, l1: float, l2: float) -> float:
    """A smooth made-up val_loss, lowest near λ₁ = 1e-4, λ₂ = 1e-3 (and for proximal)."""
    a, b = math.log10(max(l1, 1e-7)) + 4, math.log10(max(l2, 1e-7)) + 3
    offset = 0.02 * (METHODS.index(method) % 3) if method != "proximal" else 0.0
    return 0.30 + 0.02 * a * a + 0.015 * b * b + offset


def sparsity_at(method: str, l1: float) -> float:
    if method == "proximal":  # only the proximal step makes weights exactly 0
        return min(0.95, 0.2 * (math.log10(max(l1, 1e-7)) + 7))
    return 0.0


def add_trial(
    study: optuna.Study,
    *,
    method: str,
    l1: float,
    l2: float,
    lr: float = 1e-3,
    methods: Sequence[str] = METHODS,
    sample_l1: bool = True,
    values: Sequence[float] | None = None,
    baseline: bool = False,
    state: TrialState = TrialState.COMPLETE,
) -> None:
    """One finished trial as the runner leaves it."""
    params: dict[str, Any] = {}
    dists: dict[str, BaseDistribution] = {}
    if len(methods) > 1:
        params["method"], dists["method"] = method, CategoricalDistribution(list(methods))
    if sample_l1 and method in L1_METHODS:
        params["l1"], dists["l1"] = (
            (LOW if baseline else l1),
            FloatDistribution(LOW, HIGH, log=True),
        )
    params["l2"], dists["l2"] = (LOW if baseline else l2), FloatDistribution(LOW, HIGH, log=True)
    attrs: dict[str, Any] = {"method": method, "l1": l1, "l2": l2, "lr": lr, "seed": 0}
    if baseline:
        attrs["baseline"] = True
    if state == TrialState.COMPLETE:
        sparsity = sparsity_at(method, l1)
        attrs |= {
            "device": "cpu",
            "sparsity": sparsity,
            "sparsity_1e-3": min(1.0, sparsity + 0.05),
            "epochs_run": 10,
            "wall_s": 3.5,
            "median_step_ms": STEP_MS[method] * (1 + 0.01 * (l2 * 1e3 % 3)),
            "train_loss": 0.2,
        }
        if values is None:
            val_loss = loss_at(method, l1, l2)
            values = [val_loss] if len(study.directions) == 1 else [val_loss, sparsity]
    else:
        attrs["fail_reason"] = "diverged: loss is nan" if state == TrialState.FAIL else None
        values = None
    study.add_trial(
        create_trial(
            state=state,
            params=params,
            distributions=dists,
            values=list(values) if values is not None else None,
            user_attrs={k: v for k, v in attrs.items() if v is not None},
        )
    )


def fill(
    study: optuna.Study,
    *,
    n: int = 30,
    methods: Sequence[str] = METHODS,
    fixed_l1: float | None = None,
    seed: int = 0,
) -> None:
    """A baseline, ``n`` random complete trials, one pruned and one failed."""
    rng = random.Random(seed)
    sample_l1 = fixed_l1 is None
    first = next((m for m in methods if m in L1_METHODS), methods[0])
    add_trial(
        study, method=first, l1=0.0, l2=0.0, methods=methods, baseline=True, sample_l1=sample_l1
    )
    for _ in range(n):
        method = rng.choice(list(methods))
        l1 = fixed_l1 if fixed_l1 is not None else 10 ** rng.uniform(-6, -2)
        l1 = l1 if method in L1_METHODS else 0.0
        l2 = 10 ** rng.uniform(-6, -2)
        add_trial(study, method=method, l1=l1, l2=l2, methods=methods, sample_l1=sample_l1)
    add_trial(study, method=methods[-1], l1=1e-3, l2=1e-3, methods=methods, state=TrialState.PRUNED)
    add_trial(study, method=methods[0], l1=1e-2, l2=1e-2, methods=methods, state=TrialState.FAIL)
