"""Population trials as Optuna trials on a real database: exact budgets, refills, groups by
method, per-member pruning, learning curves, and a stop that interrupts every trial held."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from regcore.spec import SweepSpec
from regcore.store import (
    StudyLock,
    claim_trials,
    count_trials,
    create_engine_for,
    create_storage,
    upgrade_database,
)
from regcore.sweeps.studies import open_study
from regcore.worker.population._runner import PopulationRun
from tests.worker.specs import population_spec


class Sweep:
    def __init__(self, url: str, spec: SweepSpec) -> None:
        upgrade_database(url)
        self.spec = spec
        self.engine = create_engine_for(url)
        self.storage = create_storage(url)
        self.study = open_study(spec, self.storage)
        self.lock = StudyLock(engine=self.engine, study_name=spec.name)
        self.claims: list[int] = []

    def claim(self, k: int) -> list[optuna.Trial]:
        self.claims.append(k)
        n = self.spec.budget.n_trials
        return claim_trials(self.engine, self.study, n_trials=n, lock=self.lock, k=k)

    def run(self, **options: Any) -> dict[int, TrialState]:
        size = self.spec.execution.population
        assert isinstance(size, int)
        held: list[list[int]] = []
        run = PopulationRun(
            study=self.study,
            spec=self.spec,
            size=size,
            claim=self.claim,
            should_stop=options.pop("should_stop", lambda: False),
            on_held=held.append,
            **options,
        )
        self.held = held
        return run.run(self.claim(size))

    def close(self) -> None:
        self.storage.engine.dispose()
        self.engine.dispose()


@pytest.fixture
def sweep(tmp_path: Path) -> Iterator[Any]:
    made: list[Sweep] = []

    def make(spec: SweepSpec) -> Sweep:
        made.append(Sweep(f"sqlite:///{tmp_path / 'population.db'}", spec))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_a_population_uses_the_budget_exactly_and_refills_its_slots(sweep: Any) -> None:
    space = {"l1": {"low": 1e-3, "high": 1e-1, "log": True}, "l2": 0.0, "method": "fused"}
    pruner = {"name": "median", "options": {"n_startup_trials": 2}}
    s = sweep(population_spec(search_space=space, pruner=pruner))
    states = s.run()
    trials = s.study.get_trials(deepcopy=False)
    assert len(trials) == 10  # the baseline and 9 sampled: the budget, no more
    assert set(states) == {t.number for t in trials}
    assert count_trials(s.engine, "population").finished == 10
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert s.claims[0] == 4
    assert sum(s.claims) >= 10
    assert all(t.user_attrs["population"] == 4 for t in trials)
    assert trials[0].user_attrs["baseline"] is True
    assert (trials[0].user_attrs["l1"], trials[0].user_attrs["l2"]) == (0.0, 0.0)
    for t in trials:
        epochs = len(t.user_attrs["curves"]["val_loss"])
        assert epochs >= 1
        if t.user_attrs.get("baseline"):
            assert t.intermediate_values == {}  # the reference is never pruned
        else:
            assert len(t.intermediate_values) == epochs  # every epoch went to the pruner
        if t.state == TrialState.COMPLETE:
            assert epochs == 4
            assert {"sparsity", "l1_norm", "support_f1", "wall_s"} <= set(t.user_attrs)
            assert t.value == t.user_attrs["val_loss"]
    assert max(len(ids) for ids in s.held) <= 4  # one method: refills take the free slots
    assert len(s.claims) > 3  # pruned members' slots were refilled


def test_trials_of_other_methods_wait_for_their_own_population(sweep: Any) -> None:
    s = sweep(population_spec(budget={"n_trials": 14}))  # all six methods
    s.run()
    trials = s.study.get_trials(deepcopy=False)
    assert count_trials(s.engine, "population").finished == 14
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert max(len(ids) for ids in s.held) <= 8  # K training, at most K waiting


def test_members_of_one_population_share_the_method(sweep: Any) -> None:
    space = {"l1": 0.3, "l2": 0.0, "method": ["fused", "proximal"]}
    workload = {"name": "sparse_regression", "params": {"n_features": 40, "n_informative": 4}}
    s = sweep(
        population_spec(
            workload=workload, search_space=space, training={"epochs": 30, "batch_size": 200}
        )
    )
    s.run()
    trials = s.study.get_trials(deepcopy=False)
    assert Counter(t.state for t in trials) == {TrialState.COMPLETE: 10}
    # Both methods ran, and a member trained as a trial of its own method would (the
    # proximal members are sparse, the fused ones are not).
    by_method = {
        m: [
            t.user_attrs["sparsity"]
            for t in trials
            if t.user_attrs["method"] == m and not t.user_attrs.get("baseline")
        ]
        for m in ("fused", "proximal")
    }
    assert by_method["fused"]
    assert by_method["proximal"]
    assert max(by_method["fused"]) == 0.0
    assert min(by_method["proximal"]) > 0.0


def test_a_stop_interrupts_every_trial_it_holds(sweep: Any) -> None:
    s = sweep(population_spec(training={"epochs": 50, "batch_size": 40, "device": "cpu"}))
    ticks = itertools.count()
    states = s.run(should_stop=lambda: next(ticks) > 3)
    trials = s.study.get_trials(deepcopy=False)
    assert set(states.values()) == {TrialState.FAIL}
    for t in trials:
        assert t.user_attrs["interrupted"] is True
        assert t.user_attrs["final_failure"] is False  # no budget used: they run again
    assert count_trials(s.engine, "population").finished == 0


def test_a_member_whose_loss_diverges_fails_alone(sweep: Any) -> None:
    spec = population_spec(
        search_space={"l1": 0.0, "l2": 0.0, "lr": {"choices": [0.01, 1e6]}},
        optimizer={"name": "sgd", "lr": 0.01},
    )
    s = sweep(spec)
    s.run()
    trials = s.study.get_trials(deepcopy=False)
    diverged = [t for t in trials if t.state == TrialState.FAIL]
    assert diverged
    assert all(t.params["lr"] == 1e6 for t in diverged)
    assert all(t.user_attrs["fail_reason"].startswith("diverged") for t in diverged)
    assert all(t.state == TrialState.COMPLETE for t in trials if t.params["lr"] == 0.01)


def test_data_that_is_no_tensor_fails_its_trials_with_the_fix(
    sweep: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from regcore.workloads import Dataset, Datasets, SparseRegressionWorkload

    def as_datasets(self: SparseRegressionWorkload, *, seed: int) -> Datasets:
        d = original(self, seed=seed)
        assert isinstance(d, Dataset)
        pair = torch.utils.data.TensorDataset
        return Datasets(train=pair(d.x_train, d.y_train), val=pair(d.x_val, d.y_val))

    original = SparseRegressionWorkload.load_data
    monkeypatch.setattr(SparseRegressionWorkload, "load_data", as_datasets)
    s = sweep(population_spec(budget={"n_trials": 4}))
    s.run()
    for t in s.study.get_trials(deepcopy=False):
        assert t.state == TrialState.FAIL
        assert "population trials need tensor data" in t.user_attrs["fail_reason"]
        assert "set execution.population: 1" in t.user_attrs["fail_reason"]


def test_a_spec_refuses_a_population_for_a_training_function() -> None:
    import tests.plugins.functions  # noqa: F401 - registers test_linear
    from regcore.spec import SpecError

    with pytest.raises(SpecError) as info:
        population_spec(workload={"name": "test_linear"}, optimizer={})
    problems = {p.field: p.message for p in info.value.problems}
    assert problems["execution.population"].startswith("a training function is not vectorized")
