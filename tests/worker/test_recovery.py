"""Ending trials whose worker died, on a real database: the reason recorded on the trial, the
retry marked and kept what it is, in its own study, and ``max_retries`` respected."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from regcore.store import create_storage
from regcore.trial_kinds import BASELINE, CONFIRM, CONFIRM_SEED
from regcore.worker.recovery import WORKERS_LOST, fail_stale

optuna.logging.set_verbosity(optuna.logging.WARNING)
LOST = "interrupted: its worker stopped beating for over 1 s (killed, or its machine lost)"


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[optuna.storages.RDBStorage]:
    storage = create_storage(f"sqlite:///{tmp_path / 'r.db'}", heartbeat_s=1, grace_s=1)
    yield storage
    storage.engine.dispose()


def run_and_lose(storage: optuna.storages.RDBStorage, study: optuna.Study) -> optuna.Trial:
    """Start the study's next trial, beat once, and let the worker "die" (no more beats)."""
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    storage.record_heartbeat(trial._trial_id)
    threading.Event().wait(2.5)  # past the grace period, by the database's clock
    return trial


def test_a_dead_workers_trial_records_why_and_its_retry_keeps_what_it_is(
    storage: optuna.storages.RDBStorage,
) -> None:
    study = optuna.create_study(study_name="lost", storage=storage)
    study.enqueue_trial({"x": 0.0}, user_attrs={BASELINE: True})
    lost = run_and_lose(storage, study)
    assert fail_stale(storage, study, grace_s=1, max_retries=2) == 1
    assert fail_stale(storage, study, grace_s=1, max_retries=2) == 0  # ended once
    failed, retry = study.trials
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["fail_reason"] == LOST
    assert failed.user_attrs["final_failure"] is False  # it uses no budget
    assert retry.state == TrialState.WAITING
    assert retry.user_attrs == {"retry_of": lost.number, BASELINE: True, WORKERS_LOST: 1}
    assert failed.params == {"x": 0.0}
    assert study.ask().suggest_float("x", 0.0, 1.0) == 0.0  # the same point, run again


def test_a_point_is_not_run_again_once_max_retries_of_its_trials_lost_their_worker(
    storage: optuna.storages.RDBStorage,
) -> None:
    study = optuna.create_study(study_name="deadly", storage=storage)
    run_and_lose(storage, study)
    assert fail_stale(storage, study, grace_s=1, max_retries=1) == 1
    run_and_lose(storage, study)  # its retry: its worker dies too
    assert fail_stale(storage, study, grace_s=1, max_retries=1) == 1
    first, second = study.trials  # no third: the retries are spent
    assert second.user_attrs["retry_of"] == first.number
    assert second.user_attrs["fail_reason"] == (
        LOST + "; not run again: 2 of its trials lost their worker (max_retries=1)"
    )
    assert second.user_attrs["final_failure"] is True  # the point itself may be the killer


def test_a_confirmation_trial_is_retried_in_its_own_study_with_its_seed(
    storage: optuna.storages.RDBStorage,
) -> None:
    search = optuna.create_study(study_name="search", storage=storage)
    confirm = optuna.create_study(study_name="search:confirm", storage=storage)
    confirm.enqueue_trial({"x": 0.5}, user_attrs={CONFIRM: 3, CONFIRM_SEED: 7})
    lost = run_and_lose(storage, confirm)
    assert fail_stale(storage, confirm, grace_s=1, max_retries=2) == 1
    assert search.trials == []
    retry = confirm.trials[-1]
    kept = {CONFIRM: 3, CONFIRM_SEED: 7}
    assert retry.user_attrs == {"retry_of": lost.number, **kept, WORKERS_LOST: 1}
