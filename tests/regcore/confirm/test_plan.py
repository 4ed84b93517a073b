"""What a confirmation queues: the best distinct settings trained from scratch, each with a
λ = 0 twin that keeps its other searched values, on new seeds and splits, in its own study."""

from __future__ import annotations

import optuna
import pytest

from regcore.confirm import (
    QUEUED,
    candidates,
    confirmation_study,
    next_confirmation,
    queue_confirmation,
    seeds,
)
from regcore.spec import SpecError, parse_spec
from tests.regcore.confirm.searches import make_spec, search, searched

WAITING = (optuna.trial.TrialState.WAITING,)


def test_the_confirmation_lives_in_its_own_study_so_the_search_keeps_its_best() -> None:
    study = search(optuna.create_study())
    assert queue_confirmation(study, make_spec()) == 3 * (2 + 2)  # 2 settings, 2 twins
    confirm = confirmation_study(study)
    assert confirm is not None
    assert confirm.study_name.endswith(":confirm")
    assert confirm.user_attrs["confirmation_of"] == study.study_name
    assert not any("confirm" in t.user_attrs for t in study.get_trials())
    assert len(confirm.get_trials(states=WAITING)) == 12
    assert study.best_trial.number == 1  # Optuna's own best is the search's


def test_the_top_distinct_settings_are_queued_once_with_seeds_the_search_never_used() -> None:
    study = search(optuna.create_study())
    spec = make_spec()
    queue_confirmation(study, spec)
    assert queue_confirmation(study, spec) == 0
    assert study.user_attrs[QUEUED] == 12
    confirm = confirmation_study(study)
    assert confirm is not None
    waiting = confirm.get_trials(states=WAITING)
    keys = {t.user_attrs["confirm"] for t in waiting}
    assert keys == {1, 3, "baseline", "baseline-2"}  # trial 2 repeats trial 1's setting
    assert {t.user_attrs["confirm_seed"] for t in waiting} == {8, 9, 10}  # never the search's 7


def test_each_twin_keeps_its_candidates_other_values_with_lambda_zero() -> None:
    study = search(optuna.create_study())
    queue_confirmation(study, make_spec())
    confirm = confirmation_study(study)
    assert confirm is not None
    waiting = confirm.get_trials(states=WAITING)
    by_key = {t.user_attrs["confirm"]: t for t in waiting}
    assert by_key[1].user_attrs["twin"] == "baseline"
    assert by_key[3].user_attrs["twin"] == "baseline-2"
    assert by_key["baseline"].system_attrs["fixed_params"] == {"dropout": 0.1}
    assert by_key["baseline-2"].system_attrs["fixed_params"] == {"dropout": 0.2}
    assert by_key["baseline"].user_attrs["baseline"] is True
    assert by_key[1].user_attrs["pinned_method"] == "proximal"


def test_candidates_that_share_their_other_values_share_a_twin() -> None:
    study = optuna.create_study()
    searched(study, 0.30, cls="proximal", l1=1e-3, l2=1e-4)
    searched(study, 0.31, cls="penalty", l1=1e-4, l2=1e-3)
    queue_confirmation(study, make_spec(seeds=2, top=2))
    confirm = confirmation_study(study)
    assert confirm is not None
    keys = {t.user_attrs["confirm"] for t in confirm.get_trials()}
    assert keys == {0, 1, "baseline"}


def test_a_seed_varies_the_data_split_where_the_workload_names_one() -> None:
    assert seeds(make_spec(seeds=3)) == [(8, 41), (9, 42), (10, 43)]  # split_seed 40 + 1…
    assert seeds(make_spec(seeds=2, vary_split=False)) == [(8, None), (9, None)]
    study = search(optuna.create_study())
    queue_confirmation(study, make_spec())
    confirm = confirmation_study(study)
    assert confirm is not None
    pairs = {(t.user_attrs["confirm_seed"], t.user_attrs["confirm_split"]) for t in confirm.trials}
    assert pairs == {(8, 41), (9, 42), (10, 43)}  # every setting of a seed on the same split


def test_warm_started_path_points_and_the_baseline_are_never_candidates() -> None:
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"baseline": True}))
    searched(study, 0.10, cls="proximal", l1=1e-1, l2=1e-1, path_step=3, warm_start=0)
    searched(study, 0.35, cls="proximal", l1=1e-2, l2=1e-2, path_retrain=1)
    searched(study, 0.40, cls="penalty", l1=1e-3, l2=1e-3)
    assert [t.number for t in candidates(study, 3)] == [2, 3]


def test_next_confirmation_queues_then_hands_out_the_oldest_waiting_trial() -> None:
    study = search(optuna.create_study())
    spec = make_spec(seeds=2, top=1)
    first = next_confirmation(study, spec)
    assert first is not None
    assert first.user_attrs["confirm"] == 1
    assert first.study.study_name.endswith(":confirm")
    handed = [first]
    while (trial := next_confirmation(study, spec)) is not None:
        handed.append(trial)
    assert len(handed) == 4  # 2 seeds × (the best and its twin)


def test_no_confirmation_when_switched_off_or_nothing_completed() -> None:
    study = search(optuna.create_study())
    assert queue_confirmation(study, make_spec(seeds=0)) == 0
    assert confirmation_study(study) is None
    assert queue_confirmation(optuna.create_study(), make_spec()) == 0


def test_a_half_made_confirmation_study_is_made_again() -> None:
    study = search(optuna.create_study())
    storage = study._storage
    optuna.create_study(study_name=f"{study.study_name}:confirm", storage=storage)
    assert queue_confirmation(study, make_spec()) == 12
    confirm = confirmation_study(study)
    assert confirm is not None
    assert len(confirm.get_trials()) == 12


def test_confirmation_is_on_by_default_and_false_switches_it_off() -> None:
    base = make_spec().to_json_dict()
    base.pop("confirm")
    assert (parse_spec(base).confirm.seeds, parse_spec(base).confirm.top) == (5, 3)
    assert not parse_spec({**base, "confirm": False}).confirm.enabled
    assert parse_spec({**base, "confirm": True}).confirm.enabled


def test_two_objectives_confirm_nothing_by_default_and_refuse_it_when_asked() -> None:
    data = {
        "name": "confirm-test",
        "workload": {"name": "sparse_regression"},
        "search_space": {"l1": {"low": 1e-5, "high": 1e-1, "log": True}, "l2": 0.0},
        "objectives": [
            {"metric": "val_loss", "direction": "minimize"},
            {"metric": "sparsity", "direction": "maximize"},
        ],
    }
    assert not parse_spec(data).confirm.enabled
    with pytest.raises(SpecError) as info:
        parse_spec({**data, "confirm": {"seeds": 3}})
    (problem,) = info.value.problems
    assert problem.field == "confirm"
    assert "set confirm: false or remove one objective" in problem.message


def test_one_seed_is_refused() -> None:
    with pytest.raises(SpecError, match="use seeds: 2 or more"):
        make_spec(seeds=1)
