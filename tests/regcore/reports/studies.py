"""Real in-memory Optuna studies whose trials carry what the trial runner records.

Each trial's ``params`` are what :func:`regcore.spec.suggest.suggest` samples: the method
class (``method_class``, when the spec lists methods of more than one class), ``l1`` (when
the class can apply it) and ``l2``; the λ = 0 baseline samples nothing. Its user attributes
are the runner's: ``method`` (the class's cheapest method), ``method_class``, ``l1``, ``l2``,
``lr``, ``baseline``, ``sparsity``, ``val_accuracy``, ``curves``, ... (see worker/runner.py
and worker/trial_end.py). ``old=True`` gives a trial from before method classes (``method``
sampled, no ``method_class``). Confirmation, path and cost-probe trials are in extras.py.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, Literal

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from regcore.regularizers import L1_METHODS, METHODS, cheapest, group_by_class
from regcore.spec import parse_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

LOW, HIGH = 1e-6, 1e-2
STEP_MS = {
    "none": 0.9,
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
    **sections: Any,
) -> dict[str, Any]:
    """A valid spec's stored JSON dict (the name may be anything, as a stored dict may be);
    a sampled search (TPE) unless ``sections`` say otherwise."""
    sections.setdefault("sampler", {"name": "tpe", "seed": 0})
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
            **sections,
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


def loss_at(method_class: str, l1: float, l2: float) -> float:
    """A smooth made-up val_loss, lowest near λ₁ = 1e-4, λ₂ = 1e-3 (and for proximal)."""
    a, b = math.log10(max(l1, 1e-7)) + 4, math.log10(max(l2, 1e-7)) + 3
    offset = {"penalty": 0.02, "decoupled": 0.01}.get(method_class, 0.0)
    return 0.30 + 0.02 * a * a + 0.015 * b * b + offset


def sparsity_at(method_class: str, l1: float) -> float:
    if method_class == "proximal":  # only the proximal step makes weights exactly 0
        return min(0.95, 0.2 * (math.log10(max(l1, 1e-7)) + 7))
    return 0.0


def curves_to(val_loss: float, epochs: int = 10) -> dict[str, list[float | None]]:
    """Learning curves that end at ``val_loss`` (train loss below it)."""
    decay = [math.exp(-0.4 * e) for e in range(epochs)]
    return {
        "train_loss": [val_loss - 0.1 + 1.5 * d for d in decay],
        "val_loss": [val_loss + 1.2 * d for d in decay],
    }


def add_trial(
    study: optuna.Study,
    *,
    l1: float,
    l2: float,
    method: str | None = None,
    method_class: str | None = None,
    lr: float = 1e-3,
    methods: Sequence[str] = METHODS,
    sample_l1: bool = True,
    values: Sequence[float] | None = None,
    baseline: bool = False,
    state: TrialState = TrialState.COMPLETE,
    old: bool = False,
    curves: bool = True,
    attrs: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> int:
    """One finished trial as the runner leaves it; its number."""
    classes = group_by_class(methods)
    if method_class is None:
        method_class = next(c for c, ms in classes.items() if method is None or method in ms)
    if baseline:
        method_class, l1, l2 = "none", 0.0, 0.0
        method = method or cheapest(methods, l1=0.0, costs=STEP_MS)
    elif method is None:
        method = cheapest(classes[method_class], l1=l1, costs=STEP_MS)
    sampled: dict[str, Any] = {}
    dists: dict[str, BaseDistribution] = {}
    if old and len(methods) > 1:
        sampled["method"], dists["method"] = method, CategoricalDistribution(list(methods))
    elif not baseline and len(classes) > 1:
        sampled["method_class"] = method_class
        dists["method_class"] = CategoricalDistribution(list(classes))
    able = classes.get(method_class, ())
    can_l1 = method in L1_METHODS if old else any(m in L1_METHODS for m in able)
    if not baseline and sample_l1 and can_l1:
        sampled["l1"], dists["l1"] = l1, FloatDistribution(LOW, HIGH, log=True)
    if not baseline:
        sampled["l2"], dists["l2"] = l2, FloatDistribution(LOW, HIGH, log=True)
    user: dict[str, Any] = {"method": method, "l1": l1, "l2": l2, "lr": lr, "seed": 0}
    if not old:
        user["method_class"] = method_class
    if baseline:
        user["baseline"] = True
    if state == TrialState.COMPLETE:
        sparsity = sparsity_at(method_class, l1)
        val_loss = loss_at(method_class, l1, l2)
        user |= {
            "device": "cpu",
            "sparsity": sparsity,
            "sparsity_1e-3": min(1.0, sparsity + 0.05),
            "val_accuracy": round(1.2 - val_loss, 4),
            "epochs_run": 10,
            "wall_s": 3.5,
            "median_step_ms": STEP_MS[method] * (1 + 0.01 * (l2 * 1e3 % 3)),
            "train_loss": 0.2,
        }
        if values is None:
            values = [val_loss] if len(study.directions) == 1 else [val_loss, sparsity]
        if curves:
            user["curves"] = curves_to(values[0])
    else:
        user["fail_reason"] = "diverged: loss is nan" if state == TrialState.FAIL else None
        values = None
    user |= attrs or {}
    if params is not None:  # a trial enqueued with these parameters (a confirmation's)
        sampled = {k: v for k, v in params.items() if k in dists}
    study.add_trial(
        create_trial(
            state=state,
            params=sampled,
            distributions={k: d for k, d in dists.items() if k in sampled},
            values=list(values) if values is not None else None,
            user_attrs={k: v for k, v in user.items() if v is not None},
        )
    )
    return len(study.trials) - 1


def fill(
    study: optuna.Study,
    *,
    n: int = 30,
    methods: Sequence[str] = METHODS,
    fixed_l1: float | None = None,
    seed: int = 0,
    old: bool = False,
) -> None:
    """A baseline, ``n`` random complete trials (a random class each), one pruned and one
    failed."""
    rng = random.Random(seed)
    sample_l1 = fixed_l1 is None
    classes = group_by_class(methods)
    add_trial(study, l1=0.0, l2=0.0, methods=methods, baseline=True, old=old)
    for _ in range(n):
        if old:
            method: str | None = rng.choice(list(methods))
            cls = None
            able = method in L1_METHODS
        else:
            method, cls = None, rng.choice(list(classes))
            able = any(m in L1_METHODS for m in classes[cls])
        l1 = fixed_l1 if fixed_l1 is not None else 10 ** rng.uniform(-6, -2)
        l1 = l1 if able else 0.0
        l2 = 10 ** rng.uniform(-6, -2)
        add_trial(
            study,
            method=method,
            method_class=cls,
            l1=l1,
            l2=l2,
            methods=methods,
            sample_l1=sample_l1,
            old=old,
        )
    names = list(classes)
    for cls, lam, state in (
        (names[-1], 1e-3, TrialState.PRUNED),
        (names[0], 1e-2, TrialState.FAIL),
    ):
        l1 = lam if any(m in L1_METHODS for m in classes[cls]) else 0.0
        add_trial(study, method_class=cls, l1=l1, l2=lam, methods=methods, state=state)
