"""Confirmation through real worker processes: after the search's exact budget, the best
settings and the baseline train again with new seeds, apart from the budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState

from regcore.confirm import BASELINE, confirmation, is_confirmation, search_trials
from regcore.spec import SweepSpec
from regcore.store import count_trials, create_engine_for
from tests.worker.test_local import make_spec
from worker.local import LocalOptions, run_local_sweep


def make_confirming_spec() -> SweepSpec:
    return make_spec(name="confirm-test", budget={"n_trials": 6}, confirm={"seeds": 3, "top": 2})


@pytest.mark.parametrize("workers", [1, 2])
def test_confirmation_runs_after_the_exact_budget_with_new_seeds(
    workers: int, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    run = run_local_sweep(make_confirming_spec(), LocalOptions(storage_url=url, workers=workers))
    assert run.outcome == "completed"
    trials = run.study.trials
    search = [t for t in trials if not is_confirmation(t)]
    confirm = [t for t in trials if is_confirmation(t)]
    assert len(search) == 6  # the budget, exactly: confirmations do not use it
    assert [t.state for t in confirm] == [TrialState.COMPLETE] * (2 + 1) * 3
    assert min(t.number for t in confirm) > max(t.number for t in search)
    by_setting: dict[Any, list[int]] = {}
    for t in confirm:
        by_setting.setdefault(t.user_attrs["confirm"], []).append(t.user_attrs["confirm_seed"])
        assert t.user_attrs["seed"] == t.user_attrs["confirm_seed"]  # trained with that seed
    best_two = [t.number for t in search_trials(run.study)[:2]]
    assert set(by_setting) == {*best_two, BASELINE}
    assert all(sorted(seeds) == [1, 2, 3] for seeds in by_setting.values())
    assert {t.user_attrs["seed"] for t in search} == {0}  # never a confirmation's seed
    engine = create_engine_for(url)
    try:
        counts = count_trials(engine, run.study.study_name)
    finally:
        engine.dispose()
    assert (counts.used, counts.confirming) == (6, 0)
    result = confirmation(run.study)
    assert result is not None
    assert result.pending == 0
    assert [s.n for s in result.settings] == [3, 3, 3]
    assert result.settings[-1].is_baseline
    assert result.verdict  # a sentence either way; its wording is tested in test_confirm
