"""Which epochs a trial reports to its pruner (regcore.worker.pruning): where the pruner may decide,
and its decisions the same as with a report after every epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from regcore.worker import trial_end
from regcore.worker.pruning import reporting_epochs
from regcore.worker.runner import run_trial
from tests.worker.specs import runner_spec, study_for


def reported(pruner: dict[str, Any], epochs: int) -> list[int]:
    spec = runner_spec(pruner=pruner, training={"epochs": epochs, "batch_size": 200})
    return [e for e in range(epochs) if reporting_epochs(spec)(e)]


def test_without_a_pruner_no_epoch_is_reported() -> None:
    assert reported({"name": "none"}, 10) == []


@pytest.mark.parametrize("name", ["median", "percentile"])
def test_median_and_percentile_read_every_epoch(name: str) -> None:
    # They compare the best value over every step a trial reported.
    options = {"percentile": 25} if name == "percentile" else {}
    assert reported({"name": name, "options": options}, 6) == list(range(6))


def test_hyperband_reports_its_rungs_and_the_last_epoch() -> None:
    # min_resource 1 (the spec's default), Optuna's reduction factor 3: rungs 1, 3, 9, 27.
    assert reported({"name": "hyperband"}, 60) == [1, 3, 9, 27, 59]
    options = {"min_resource": 2, "reduction_factor": 2}
    assert reported({"name": "hyperband", "options": options}, 20) == [2, 4, 8, 16, 19]


def test_successive_halving_starts_at_its_early_stopping_rate() -> None:
    options = {"min_resource": 1, "reduction_factor": 2, "min_early_stopping_rate": 2}
    assert reported({"name": "successive_halving", "options": options}, 20) == [4, 8, 16, 19]
    # min_resource "auto" is estimated from finished trials: every epoch until then.
    assert reported({"name": "successive_halving"}, 5) == list(range(5))


def run(spec: Any, tmp_path: Path, name: str) -> list[tuple[TrialState, int]]:
    study = study_for(spec, tmp_path / name)
    for _ in range(12):
        run_trial(study, study.ask(), spec)
    trials = study.get_trials(deepcopy=False)
    return [(t.state, t.user_attrs["epochs_run"]) for t in trials]


@pytest.mark.parametrize("pruner", ["hyperband", "successive_halving"])
def test_reporting_at_the_rungs_prunes_what_every_epoch_pruned(
    pruner: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"min_resource": 1, "reduction_factor": 2}
    spec = runner_spec(
        search_space={"l1": {"low": 1e-4, "high": 10.0, "log": True}, "l2": 0.0},
        training={"epochs": 9, "batch_size": 50, "device": "cpu"},
        sampler={"name": "random", "seed": 3},
        pruner={"name": pruner, "options": options},
    )
    for folder in ("thin", "every"):
        (tmp_path / folder).mkdir()
    thin = run(spec, tmp_path, "thin")
    monkeypatch.setattr(trial_end, "reporting_epochs", lambda spec: lambda epoch: True)
    every = run(spec, tmp_path, "every")
    assert TrialState.PRUNED in {state for state, _ in every}  # the comparison means something
    assert thin == every


def test_a_running_trials_progress_is_written_at_most_every_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[int] = []
    original = optuna.Trial.set_user_attr

    def counted(self: optuna.Trial, key: str, value: Any) -> None:
        if key == "epochs_run":
            writes.append(value)
        original(self, key, value)

    monkeypatch.setattr(optuna.Trial, "set_user_attr", counted)
    spec = runner_spec(training={"epochs": 6, "batch_size": 200, "device": "cpu"})
    study = study_for(spec, tmp_path)
    monkeypatch.setattr(trial_end, "PROGRESS_EVERY_S", 3600.0)
    assert run_trial(study, study.ask(), spec) == TrialState.COMPLETE
    assert writes == []  # none while it ran: the interval never passed
    assert study.trials[0].user_attrs["epochs_run"] == 6  # written with the trial's end
    monkeypatch.setattr(trial_end, "PROGRESS_EVERY_S", 0.0)
    assert run_trial(study, study.ask(), spec) == TrialState.COMPLETE
    assert writes == [1, 2, 3, 4, 5, 6]
