"""Searches made by hand (in-memory studies) for the confirmation's tests, and a stand-in
for the workers that trains a queued confirmation with chosen values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution

from regcore.confirm import confirmation_study
from regcore.spec import SweepSpec, parse_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTRIBUTIONS = {
    "method_class": CategoricalDistribution(["penalty", "proximal"]),
    "l1": FloatDistribution(1e-6, 1e-1, log=True),
    "l2": FloatDistribution(1e-6, 1e-1, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
}


def make_spec(**confirm: Any) -> SweepSpec:
    return parse_spec(
        {
            "name": "confirm-test",
            "workload": {"name": "digits_mlp", "params": {"split_seed": 40}},
            "search_space": {
                "l1": {"low": 1e-6, "high": 1e-1, "log": True},
                "l2": {"low": 1e-6, "high": 1e-1, "log": True},
                "method": ["loss", "proximal"],
                "params": {"dropout": {"low": 0.0, "high": 0.5}},
            },
            "training": {"seed": 7},
            "confirm": confirm or {"seeds": 3, "top": 2},
        }
    )


def searched(
    study: optuna.Study,
    value: float,
    *,
    cls: str,
    l1: float,
    l2: float,
    dropout: float = 0.1,
    **attrs: Any,
) -> None:
    """A COMPLETE search trial as the runner leaves it."""
    method = "loss" if cls == "penalty" else cls
    params = {"method_class": cls, "l1": l1, "l2": l2, "dropout": dropout}
    marks = {"method_class": cls, "method": method, "l1": l1, "l2": l2, **attrs}
    distributions = {k: DISTRIBUTIONS[k] for k in params}
    study.add_trial(
        optuna.trial.create_trial(
            params=params, distributions=distributions, value=value, user_attrs=marks
        )
    )


def search(study: optuna.Study) -> optuna.Study:
    """The baseline, a best setting found twice, a second one, a worse one."""
    study.add_trial(
        optuna.trial.create_trial(
            params={"dropout": 0.3},
            distributions={"dropout": DISTRIBUTIONS["dropout"]},
            value=0.50,
            user_attrs={"baseline": True, "l1": 0.0, "l2": 0.0, "method": "loss"},
        )
    )
    searched(study, 0.30, cls="proximal", l1=1e-3, l2=1e-4)  # 1: the best
    searched(study, 0.30, cls="proximal", l1=1e-3, l2=1e-4)  # 2: the same setting again
    searched(study, 0.32, cls="penalty", l1=1e-6, l2=1e-3, dropout=0.2)  # 3
    searched(study, 0.40, cls="penalty", l1=1e-2, l2=1e-2)  # 4
    return study


Values = Callable[[Any, int], float]


def train_confirmation(study: optuna.Study, value: Values) -> optuna.Study:
    """Train every queued confirmation trial: setting ``key`` on seed ``seed`` reaches
    ``value(key, seed)``. Returns the confirmation study."""
    confirm = confirmation_study(study)
    assert confirm is not None
    while confirm.get_trials(states=(optuna.trial.TrialState.WAITING,)):
        trial = confirm.ask()
        attrs = trial.user_attrs
        if attrs.get("baseline"):  # what the runner records: the setting it trained with
            setting: dict[str, Any] = {"method_class": "none", "method": "loss", "l1": 0.0}
            setting["l2"] = 0.0
        else:
            lam = {n: trial.suggest_float(n, 1e-6, 1e-1, log=True) for n in ("l1", "l2")}
            cls = str(trial.suggest_categorical("method_class", ["penalty", "proximal"]))
            setting = {"method_class": cls, "method": attrs["pinned_method"], **lam}
        trial.suggest_float("dropout", 0.0, 0.5)
        for name, v in setting.items():
            trial.set_user_attr(name, v)
        confirm.tell(trial, value(attrs["confirm"], attrs["confirm_seed"]))
    return confirm


def table(values: dict[Any, list[float]], first_seed: int = 8) -> Values:
    """``value`` from lists: the n-th seed of setting ``key`` reaches ``values[key][n]``."""
    return lambda key, seed: values[key][seed - first_seed]
