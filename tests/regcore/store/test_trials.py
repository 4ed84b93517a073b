"""``count_trials``: trials by state and the sweep budget they use, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import optuna
import sqlalchemy as sa
from optuna.trial import TrialState

from regcore.store import (
    confirmation_study_name,
    count_trials,
    count_trials_by_study,
    create_storage,
    orphaned_trials,
)


def _study_with_every_kind_of_trial(url: str) -> str:
    """2 COMPLETE, 1 PRUNED, 1 RUNNING, 1 final FAIL, 2 retried FAILs, 1 WAITING."""
    name = f"counts-{uuid.uuid4().hex[:8]}"
    storage = create_storage(url)
    study = optuna.create_study(study_name=name, storage=storage)
    for value in (0.3, 0.2):
        study.tell(study.ask(), value)
    study.tell(study.ask(), state=TrialState.PRUNED)
    study.ask()  # left running
    final = study.ask()
    final.set_user_attr("final_failure", True)
    study.tell(final, state=TrialState.FAIL)
    for flag in (False, None):  # a worker died or was stopped: retried, not counted
        retried = study.ask()
        if flag is not None:
            retried.set_user_attr("final_failure", flag)
        study.tell(retried, state=TrialState.FAIL)
    study.enqueue_trial({})
    storage.engine.dispose()
    return name


def test_counts_trials_by_state_and_budget(engine: sa.Engine, url: str) -> None:
    name = _study_with_every_kind_of_trial(url)

    counts = count_trials(engine, name)

    assert dict(counts.by_state) == {
        "RUNNING": 1,
        "COMPLETE": 2,
        "PRUNED": 1,
        "FAIL": 3,
        "WAITING": 1,
    }
    assert counts.final_failures == 1
    assert counts.finished == 4  # complete + pruned + the final failure
    assert counts.running == 1
    assert counts.used == 5


def test_confirmation_trials_use_no_budget_and_are_counted_apart(
    engine: sa.Engine, url: str
) -> None:
    name = _study_with_every_kind_of_trial(url)
    storage = create_storage(url)
    study = optuna.load_study(study_name=name, storage=storage)
    study.ask()  # the WAITING search trial, now running
    confirm = optuna.create_study(study_name=confirmation_study_name(name), storage=storage)
    for _ in range(4):
        confirm.enqueue_trial({}, user_attrs={"confirm": 0, "confirm_seed": 1})
    confirm.ask()  # a confirmation, running
    confirm.tell(confirm.ask(), 0.1)
    failed = confirm.ask()
    failed.set_user_attr("final_failure", True)
    confirm.tell(failed, state=TrialState.FAIL)
    # One kept in the search's own study, as a version before confirmation studies did.
    study.enqueue_trial({}, user_attrs={"confirm": 0, "confirm_seed": 2})
    storage.engine.dispose()

    counts = count_trials(engine, name)

    assert dict(counts.confirm_by_state) == {
        "RUNNING": 1,
        "COMPLETE": 1,
        "PRUNED": 0,
        "FAIL": 1,
        "WAITING": 2,
    }
    assert counts.by_state["RUNNING"] == 2  # the search's alone
    assert counts.by_state["WAITING"] == 0
    assert counts.final_failures == 1  # the search's only
    assert counts.finished == 4
    assert counts.running == 2
    assert counts.used == 6
    assert counts.confirming == 3
    assert count_trials_by_study(engine, [name])[name] == counts


def test_counts_one_study_or_all(engine: sa.Engine, url: str) -> None:
    first = _study_with_every_kind_of_trial(url)
    second = _study_with_every_kind_of_trial(url)
    everything = count_trials(engine)

    assert count_trials(engine, first) == count_trials(engine, second)
    assert everything.by_state["COMPLETE"] >= 4
    assert everything.final_failures >= 2


def test_an_unknown_study_has_no_trials(engine: sa.Engine) -> None:
    counts = count_trials(engine, "no-such-study")

    assert set(counts.by_state.values()) == {0}
    assert counts.used == 0


def test_counts_many_studies_in_one_query_like_one_at_a_time(engine: sa.Engine, url: str) -> None:
    first, second = _study_with_every_kind_of_trial(url), _study_with_every_kind_of_trial(url)
    storage = create_storage(url)
    optuna.create_study(study_name=f"empty-{uuid.uuid4().hex[:8]}", storage=storage)
    storage.engine.dispose()

    counts = count_trials_by_study(engine, [first, second, "no-such-study"])

    assert counts[first] == counts[second] == count_trials(engine, first)
    assert counts["no-such-study"].finished == counts["no-such-study"].running == 0
    assert count_trials_by_study(engine, []) == {}


def test_a_running_trial_that_never_beat_is_found_once_it_is_old(
    engine: sa.Engine, url: str
) -> None:
    name = f"orphans-{uuid.uuid4().hex[:8]}"
    storage = create_storage(url, heartbeat_s=1, grace_s=1)
    study = optuna.create_study(study_name=name, storage=storage)
    lost, beating, done = study.ask(), study.ask(), study.ask()
    storage.record_heartbeat(beating._trial_id)
    study.tell(done, 1.0)
    assert orphaned_trials(engine, name, older_than_s=60) == []  # too young yet
    an_hour_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE trials SET datetime_start = :t WHERE trial_id IN (:a, :b, :c)"),
            {"t": an_hour_ago, "a": lost._trial_id, "b": beating._trial_id, "c": done._trial_id},
        )
    assert orphaned_trials(engine, name, older_than_s=60) == [lost._trial_id]
    storage.engine.dispose()
