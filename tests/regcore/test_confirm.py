"""Confirmation: the best settings and the baseline again with new seeds, a stated test, and a
recommendation that breaks ties toward the simpler setting."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from scipy import stats

from regcore.confirm import QUEUED, confirmation, queue_confirmation, welch_p
from regcore.spec import SpecError, SweepSpec, parse_spec

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTRIBUTIONS = {
    "method_class": CategoricalDistribution(["penalty", "proximal"]),
    "l1": FloatDistribution(1e-6, 1e-1, log=True),
    "l2": FloatDistribution(1e-6, 1e-1, log=True),
}


def make_spec(**confirm: Any) -> SweepSpec:
    return parse_spec(
        {
            "name": "confirm-test",
            "workload": {"name": "digits_mlp"},
            "search_space": {
                "l1": {"low": 1e-6, "high": 1e-1, "log": True},
                "l2": {"low": 1e-6, "high": 1e-1, "log": True},
                "method": ["loss", "proximal"],
            },
            "training": {"seed": 7},
            "confirm": confirm or {"seeds": 3, "top": 2},
        }
    )


def searched(study: optuna.Study, value: float, *, cls: str, l1: float, l2: float) -> None:
    attrs = {"method_class": cls, "method": "loss" if cls == "penalty" else cls, "l1": l1, "l2": l2}
    params = {"method_class": cls, "l1": l1, "l2": l2}
    study.add_trial(
        optuna.trial.create_trial(
            params=params, distributions=DISTRIBUTIONS, value=value, user_attrs=attrs
        )
    )


def search(study: optuna.Study) -> None:
    study.add_trial(
        optuna.trial.create_trial(
            value=0.50, user_attrs={"baseline": True, "l1": 0.0, "l2": 0.0, "method": "loss"}
        )
    )
    searched(study, 0.30, cls="proximal", l1=1e-3, l2=1e-4)  # the best
    searched(study, 0.30, cls="proximal", l1=1e-3, l2=1e-4)  # the same setting again
    searched(study, 0.32, cls="penalty", l1=1e-6, l2=1e-3)
    searched(study, 0.40, cls="penalty", l1=1e-2, l2=1e-2)


def run_confirmation(study: optuna.Study, values: dict[Any, list[float]]) -> None:
    """Train the queued trials: the n-th seed of a setting reaches ``values[setting][n]``."""
    seen: dict[Any, int] = {}
    while True:
        waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
        if not waiting:
            return
        trial = study.ask()
        key = trial.user_attrs["confirm"]
        index = seen.setdefault(key, 0)
        seen[key] += 1
        # What the runner records: the setting it trained with.
        if trial.user_attrs.get("baseline"):
            setting = {"method_class": "none", "method": "loss", "l1": 0.0, "l2": 0.0}
        else:
            params = {n: trial.suggest_float(n, 1e-6, 1e-1, log=True) for n in ("l1", "l2")}
            cls = str(trial.suggest_categorical("method_class", ["penalty", "proximal"]))
            method = "loss" if cls == "penalty" else cls
            setting = {"method_class": cls, "method": method, **params}
        for name, value in setting.items():
            trial.set_user_attr(name, value)
        study.tell(trial, values[key][index])


def test_the_top_distinct_settings_and_the_baseline_are_queued_once_with_new_seeds() -> None:
    study = optuna.create_study()
    search(study)
    spec = make_spec()
    assert queue_confirmation(study, spec) == 3 * 3  # 2 settings + the baseline, 3 seeds
    assert queue_confirmation(study, spec) == 0
    assert study.user_attrs[QUEUED] == 9
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    fixed = [t.system_attrs["fixed_params"] for t in waiting]
    assert {p.get("l2") for p in fixed} == {1e-4, 1e-3, None}  # the top two, the baseline
    assert {t.user_attrs["confirm_seed"] for t in waiting} == {8, 9, 10}  # never the search's 7
    baseline = [t for t in waiting if t.user_attrs.get("baseline")]
    assert len(baseline) == 3
    assert all(t.system_attrs["fixed_params"] == {} for t in baseline)


def test_no_confirmation_unless_asked_or_nothing_completed() -> None:
    study = optuna.create_study()
    search(study)
    assert queue_confirmation(study, make_spec(seeds=0)) == 0
    assert queue_confirmation(optuna.create_study(), make_spec()) == 0


def test_a_real_gain_beats_the_baseline_by_welchs_test() -> None:
    study = optuna.create_study()
    search(study)
    queue_confirmation(study, make_spec())
    run_confirmation(
        study, {1: [0.30, 0.31, 0.29], 3: [0.33, 0.34, 0.32], "baseline": [0.50, 0.52, 0.49]}
    )
    result = confirmation(study)
    assert result is not None
    assert [s.label for s in result.settings] == ["best", "#2", "baseline (λ=0)"]
    best = result.settings[0]
    assert best.mean == pytest.approx(0.30)
    assert best.sd == pytest.approx(0.01)
    expected = stats.ttest_ind([0.30, 0.31, 0.29], [0.50, 0.52, 0.49], equal_var=False)
    assert best.p_vs_baseline == pytest.approx(expected.pvalue / 2)  # one-sided
    assert result.recommended is best
    assert result.beats_baseline
    assert result.verdict.startswith("proximal with λ₁ = 0.001, λ₂ = 0.0001 beats the baseline")
    assert "one-sided Welch t-test at 5%" in result.verdict


def test_noise_says_regularization_made_no_measurable_difference() -> None:
    study = optuna.create_study()
    search(study)
    queue_confirmation(study, make_spec())
    run_confirmation(
        study, {1: [0.33, 0.36, 0.30], 3: [0.34, 0.31, 0.37], "baseline": [0.35, 0.31, 0.36]}
    )
    result = confirmation(study)
    assert result is not None
    assert result.recommended is not None
    assert result.recommended.is_baseline
    assert not result.beats_baseline
    assert result.verdict.startswith("regularization made no measurable difference")
    assert result.verdict.endswith("train without it")


def test_a_tie_goes_to_the_simpler_setting() -> None:
    study = optuna.create_study()
    search(study)
    queue_confirmation(study, make_spec())
    # The best (proximal) and #2 (penalty) cannot be told apart and both beat the baseline;
    # both have two non-zero λ, so the class order decides: penalty before proximal.
    run_confirmation(
        study, {1: [0.300, 0.305, 0.295], 3: [0.301, 0.306, 0.296], "baseline": [0.5, 0.51, 0.49]}
    )
    result = confirmation(study)
    assert result is not None
    assert result.recommended is not None
    assert (result.recommended.label, result.recommended.method_class) == ("#2", "penalty")
    assert result.beats_baseline


def test_a_confirmation_still_running_says_so() -> None:
    study = optuna.create_study()
    search(study)
    queue_confirmation(study, make_spec())
    result = confirmation(study)
    assert result is not None
    assert result.pending == 9
    assert (
        result.verdict
        == "not enough confirmation trials finished to compare (9 confirmation trials still to run)"
    )


def test_welch_without_spread_is_certain_and_one_sided() -> None:
    assert welch_p([1.0, 1.0], [2.0, 2.0], maximize=False) == 0.0
    assert welch_p([1.0, 1.0], [2.0, 2.0], maximize=True) == 1.0
    assert math.isnan(welch_p([1.0], [2.0, 3.0], maximize=False))  # one value: no test


def test_a_spec_refuses_one_seed_and_two_objectives() -> None:
    with pytest.raises(SpecError) as info:
        make_spec(seeds=1)
    assert "use seeds: 2 or more" in str(info.value)
    data = {
        "name": "confirm-test",
        "workload": {"name": "sparse_regression"},
        "search_space": {"l1": {"low": 1e-5, "high": 1e-1, "log": True}, "l2": 0.0},
        "objectives": [
            {"metric": "val_loss", "direction": "minimize"},
            {"metric": "sparsity", "direction": "maximize"},
        ],
        "confirm": {"seeds": 3},
    }
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    (problem,) = info.value.problems
    assert problem.field == "confirm"
    assert "remove confirm or one objective" in problem.message
