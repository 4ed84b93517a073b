"""Confirmation through real worker processes: after the search's exact budget, the best
settings and their λ = 0 twins train again with new seeds, in their own study, apart from the
budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from optuna.trial import TrialState
from scipy import stats

from regcore.confirm import candidates, confirmation, confirmation_study
from regcore.spec import SweepSpec
from regcore.store import count_trials, create_engine_for
from regcore.worker.local import LocalOptions, run_local_sweep
from regcore.worker.options import WorkerOptions
from regcore.workloads import load_plugin_modules
from tests.worker.specs import queue_spec

PLUGINS = ("tests.plugins.functions",)
load_plugin_modules(PLUGINS)  # this process reads the specs too


def make_confirming_spec() -> SweepSpec:
    return queue_spec(name="confirm-test", budget={"n_trials": 6}, confirm={"seeds": 3, "top": 2})


@pytest.mark.parametrize("workers", [1, 2])
def test_confirmation_runs_after_the_exact_budget_with_new_seeds(
    workers: int, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    run = run_local_sweep(
        make_confirming_spec(),
        LocalOptions(worker=WorkerOptions(database_url=url), workers=workers),
    )
    assert run.outcome == "completed"
    search = run.study.trials
    confirm_study = confirmation_study(run.study)
    assert confirm_study is not None
    confirm = confirm_study.trials
    assert len(search) == 6  # the budget, exactly: confirmations live in their own study
    assert [t.state for t in confirm] == [TrialState.COMPLETE] * (2 + 1) * 3  # one twin: l2 0
    by_setting: dict[Any, list[int]] = {}
    for t in confirm:
        by_setting.setdefault(t.user_attrs["confirm"], []).append(t.user_attrs["confirm_seed"])
        assert t.user_attrs["seed"] == t.user_attrs["confirm_seed"]  # trained with that seed
    best_two = [t.number for t in candidates(run.study, 2)]
    assert set(by_setting) == {*best_two, "baseline"}
    assert all(sorted(seeds) == [1, 2, 3] for seeds in by_setting.values())
    assert {t.user_attrs["seed"] for t in search} == {0}  # never a confirmation's seed
    assert run.study.best_trial.number in {t.number for t in search}
    engine = create_engine_for(url)
    try:
        counts = count_trials(engine, run.study.study_name)
    finally:
        engine.dispose()
    assert (counts.used, counts.confirming, counts.confirm_by_state["COMPLETE"]) == (6, 0, 9)
    result = confirmation(run.study)
    assert result is not None
    assert result.pending == 0
    assert [s.n for s in result.settings] == [3, 3, 3]
    assert result.settings[-1].is_baseline
    assert result.verdict  # a sentence either way; its wording is tested in tests/regcore


def test_a_small_gain_on_every_seed_is_confirmed_where_welch_saw_none(tmp_path: Path) -> None:
    # tests/plugins/functions.py's test_paired: seed-to-seed sd 0.1, λ₂ ≥ 1e-3 gains 0.03.
    spec = queue_spec(
        name="paired",
        workload={"name": "test_paired", "params": {"split_seed": 5}},
        search_space={"l1": 0.0, "l2": {"choices": [0.0, 1e-4, 1e-2]}, "method": "fused"},
        training={"epochs": 2, "device": "cpu"},
        sampler={"name": "grid", "seed": 0},
        budget={"n_trials": 4},
        confirm={"seeds": 4, "top": 1},
    )
    options = LocalOptions(
        worker=WorkerOptions(database_url=f"sqlite:///{tmp_path / 'p.db'}", plugins=PLUGINS)
    )
    run = run_local_sweep(spec, options)
    result = confirmation(run.study)
    assert result is not None
    best, twin = result.settings
    assert (best.l2, twin.l2, twin.is_baseline) == (1e-2, 0.0, True)
    assert (best.wins, len(best.gains)) == (4, 4)
    assert stats.ttest_ind(best.values, twin.values, equal_var=False).pvalue / 2 > 0.05
    assert result.beats_baseline
    assert result.recommended is best
    assert "beats its λ = 0 twin on 4 of 4 seeds" in result.verdict
    confirm = confirmation_study(run.study)
    assert confirm is not None
    splits = {t.user_attrs["confirm_split"] for t in confirm.trials}
    assert splits == {6, 7, 8, 9}  # the data split varied with the seed: split_seed 5 + 1…
