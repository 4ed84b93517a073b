"""``status``, ``report`` and ``export`` on a database, with no service: a local run's results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regcore.cli import app
from regcore.spec import parse_spec
from regcore.worker.local import LocalOptions, run_local_sweep
from regcore.worker.options import WorkerOptions

runner = CliRunner()
N_TRIALS = 3


@dataclass(frozen=True)
class LocalSweep:
    url: str
    sweep_id: str
    name: str


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> LocalSweep:
    folder = tmp_path_factory.mktemp("results")
    spec = parse_spec(
        {
            "name": "local-results",
            "workload": {"name": "sparse_regression", "params": {"n_samples": 200}},
            "search_space": {"l1": {"low": 1e-3, "high": 1e-1, "log": True}, "l2": 0.0},
            "training": {"epochs": 2, "batch_size": 200, "device": "cpu"},
            "pruner": {"name": "none"},
            "sampler": {"name": "tpe", "seed": 0},  # sampled, not walked as a path
            "confirm": False,
            "budget": {"n_trials": N_TRIALS},
        }
    )
    url = f"sqlite:///{folder / 'regsweep.db'}"
    run = run_local_sweep(
        spec,
        LocalOptions(worker=WorkerOptions(database_url=url, artifact_dir=folder / "artifacts")),
    )
    assert run.outcome == "completed"
    return LocalSweep(url=url, sweep_id=run.sweep.id, name=spec.name)


def no_service(url: str) -> dict[str, str | None]:
    """The environment of a user who ran a sweep locally: no service configured."""
    return {"REGSWEEP_SERVICE_URL": None, "REGSWEEP_DATABASE_URL": url}


def test_status_lists_a_local_runs_sweep_with_its_progress(local_sweep: LocalSweep) -> None:
    result = runner.invoke(app, ["status"], env=no_service(local_sweep.url))
    assert result.exit_code == 0, result.output
    assert local_sweep.sweep_id in result.output
    assert "completed" in result.output
    assert f"{N_TRIALS}/{N_TRIALS}" in result.output


def test_status_of_one_sweep_by_name_shows_its_best_value(local_sweep: LocalSweep) -> None:
    args = ["status", local_sweep.name, "--storage", local_sweep.url]
    result = runner.invoke(app, args, env={"REGSWEEP_SERVICE_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 0, result.output  # --storage wins over a configured service
    row = next(line for line in result.output.splitlines() if local_sweep.sweep_id in line)
    assert "–" not in row.split("│")[-2]  # the best column holds a value


def test_export_writes_every_trial(local_sweep: LocalSweep, tmp_path: Path) -> None:
    target = tmp_path / "trials.json"
    args = ["export", local_sweep.sweep_id, "--format", "json", "-o", str(target)]
    result = runner.invoke(app, args, env=no_service(local_sweep.url))
    assert result.exit_code == 0, result.output
    trials = json.loads(target.read_text())
    assert sum(t["state"] == "COMPLETE" for t in trials) == N_TRIALS
    assert {"params_l1", "attrs_sparsity"} <= set(trials[0])


def test_report_is_drawn_from_the_database(local_sweep: LocalSweep, tmp_path: Path) -> None:
    target = tmp_path / "sweep.html"
    args = ["report", local_sweep.name, "--storage", local_sweep.url, "-o", str(target)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert local_sweep.sweep_id in page
    assert "Regularizer(model, l1=" in page


def test_an_unknown_sweep_is_named_and_exits_2(local_sweep: LocalSweep) -> None:
    result = runner.invoke(app, ["export", "nope", "--storage", local_sweep.url])
    assert result.exit_code == 2
    assert "no sweep has the id or name 'nope'" in result.output


def test_a_missing_database_file_says_how_to_make_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = runner.invoke(app, ["status"], env=no_service(url))
    assert result.exit_code == 2
    assert "no database at" in result.output
    assert "regsweep run SPEC" in result.output
    assert not (tmp_path / "none.db").exists()
