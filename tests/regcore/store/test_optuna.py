"""Optuna's storage as regsweep sets it up: a trial's attributes in one transaction."""

from __future__ import annotations

import uuid

import optuna
import pytest
import sqlalchemy as sa

from regcore.store import create_storage, set_user_attrs

ATTRS = {"method": "proximal", "l1": 1e-3, "curves": {"val_loss": [0.5, None]}, "ok": True}


def test_a_trials_attributes_are_written_in_one_commit(url: str) -> None:
    storage = create_storage(url)
    study = optuna.create_study(storage=storage, study_name=f"attrs-{uuid.uuid4().hex[:8]}")
    trial = study.ask()
    trial.set_user_attr("l1", 0.5)  # written before: updated in place
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    sa.event.listen(storage.engine, "commit", count)
    try:
        set_user_attrs(trial, ATTRS)
    finally:
        sa.event.remove(storage.engine, "commit", count)
    assert len(commits) == 1
    assert trial.user_attrs == ATTRS  # the trial's own view, as set_user_attr keeps it
    fresh = create_storage(url)
    assert fresh.get_trial(trial._trial_id).user_attrs == ATTRS
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(trial, {"late": 1})
    assert "late" not in fresh.get_trial(trial._trial_id).user_attrs
    storage.engine.dispose()
    fresh.engine.dispose()


def test_other_storages_take_them_one_by_one() -> None:
    trial = optuna.create_study().ask()
    set_user_attrs(trial, ATTRS)
    assert trial.study.trials[0].user_attrs == ATTRS
