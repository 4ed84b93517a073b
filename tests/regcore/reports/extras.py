"""What comes after or beside a search, as regsweep leaves it in a study: a confirmation's
trials (:mod:`regcore.confirm`), a cost probe (worker/probe.py) and a regularization path
(:mod:`regcore.sweeps.path`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import optuna
from optuna.trial import TrialState

from regcore.regularizers import CLASSES, METHODS
from regcore.store import confirmation_study_name
from tests.regcore.reports.studies import HIGH, LOW, STEP_MS, add_trial


def confirm(
    study: optuna.Study,
    *,
    top: int = 2,
    seeds: int = 4,
    gain: float = 0.05,
    spread: float = 0.005,
    pending: int = 0,
) -> list[int]:
    """Confirmation trials as :func:`regcore.confirm.queue_confirmation` queues them (in the
    sweep's confirmation study) and the runner leaves them: the ``top`` best regularized
    settings and their λ = 0 twin, ``seeds`` seeds each; the best beats its twin by about
    ``gain``. Their numbers."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    found = sorted((t for t in complete if not t.user_attrs.get("baseline")), key=lambda t: t.value)
    base = next(t for t in complete if t.user_attrs.get("baseline"))
    search, study = (
        study,
        optuna.create_study(
            study_name=confirmation_study_name(study.study_name),
            storage=study._storage,
            directions=study.directions,
            load_if_exists=True,
        ),
    )
    study.set_user_attr("confirmation_of", search.study_name)
    numbers = []
    for s in range(seeds):
        jitter = spread * math.sin(3.1 * s + 1)
        for rank, t in enumerate(found[:top]):
            numbers.append(
                add_trial(
                    study,
                    method_class=t.user_attrs["method_class"],
                    l1=t.user_attrs["l1"],
                    l2=t.user_attrs["l2"],
                    values=[float(base.value) - gain / (rank + 1) + jitter],
                    attrs={"confirm": t.number, "confirm_seed": 1 + s, "twin": "baseline"},
                    params=t.params,
                )
            )
        numbers.append(
            add_trial(
                study,
                l1=0.0,
                l2=0.0,
                baseline=True,
                values=[float(base.value) + jitter],
                attrs={"confirm": "baseline", "confirm_seed": 1 + s},
            )
        )
    for _ in range(pending):
        add_trial(
            study,
            l1=0.0,
            l2=0.0,
            baseline=True,
            state=TrialState.WAITING,
            attrs={"confirm": "baseline", "confirm_seed": 99},
        )
    return numbers


def probe(study: optuna.Study, device: str = "cpu", methods: Sequence[str] = METHODS) -> None:
    """A cost probe as the worker keeps it: median ms per step by method, and ``none``."""
    costs = {m: STEP_MS[m] for m in ("none", *methods)}
    study.set_user_attr(f"cost_probe:{device}", costs)


def walk_path(
    study: optuna.Study,
    *,
    classes: Sequence[str] = CLASSES,
    points: int = 6,
    retrain_value: float | None = 0.33,
) -> dict[str, int]:
    """A path as regcore.sweeps.path's worker leaves it: the dense start, each class's warm-started
    points (λ₁, λ₂ up together), and the re-train of the best point. Numbers by role."""
    dense = add_trial(study, l1=0.0, l2=0.0, baseline=True, attrs={"path_step": 0})
    source, best = dense, (math.inf, -1)
    for cls in classes:
        source = dense
        for step in range(1, points + 1):
            lam = LOW * (HIGH / LOW) ** ((step - 1) / (points - 1))
            number = add_trial(
                study,
                method_class=cls,
                l1=lam,
                l2=lam,
                attrs={"path_step": step, "warm_start": source},
            )
            value = float(study.trials[number].value)
            best = min(best, (value, number))
            source = number
    roles = {"dense": dense, "best_point": best[1]}
    if retrain_value is not None:
        point = study.trials[best[1]]
        roles["retrain"] = add_trial(
            study,
            method_class=point.user_attrs["method_class"],
            l1=point.user_attrs["l1"],
            l2=point.user_attrs["l2"],
            values=[retrain_value],
            attrs={"path_retrain": best[1]},
        )
    return roles
