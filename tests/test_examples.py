"""Every example spec is valid, and its workload builds (examples are documentation)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from regcore.spec import load_spec
from regcore.spec.batch import load_batch
from regcore.workloads import build_workload

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# docs/own-model.md's Workload class: registered by REGSWEEP_PLUGINS, as the page says, in the
# regsweep processes only (this one's registry stays the built-ins).
OWN_WORKLOAD = EXAMPLES / "own_workload"
OWN_WORKLOAD_ENV = {
    "REGSWEEP_PLUGINS": "noisy_moons",
    "PYTHONPATH": f"{OWN_WORKLOAD}{os.pathsep}{ROOT}",
    "OMP_NUM_THREADS": "1",
}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_spec_is_valid_and_its_workload_loads(path: Path) -> None:
    spec = load_spec(path)
    workload = build_workload(spec.workload.name, spec.workload.params, data_dir=EXAMPLES / "data")
    data = workload.load_data(seed=spec.training.seed)
    assert data.x_train.shape[0] > 0
    assert data.x_val.shape[0] > 0


@pytest.mark.parametrize(
    "path", sorted((EXAMPLES / "batches").glob("*.yaml")), ids=lambda p: p.name
)
def test_example_batch_expands_into_valid_sweeps(path: Path) -> None:
    batch = load_batch(path)
    specs = batch.expand()

    assert len(specs) == len(list(itertools.product(*(batch.matrix or {"": [0]}).values())))
    assert len({s.name for s in specs}) == len(specs)
    assert all(s.budget.deadline == batch.deadline for s in specs)


def _regsweep(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "regcore.cli", *args],
        env={**os.environ, **OWN_WORKLOAD_ENV},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_own_workload_example_spec_is_valid(tmp_path: Path) -> None:
    done = _regsweep("validate", str(OWN_WORKLOAD / "sweep.yaml"), cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: noisy-moons (noisy_moons, 30 trials)" in " ".join(done.stdout.split())


def test_own_workload_example_trains_through_regsweep_run(tmp_path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load((OWN_WORKLOAD / "sweep.yaml").read_text())
    data["workload"]["params"].update(n_samples=120, n_noise_features=8, hidden=16)
    data |= {
        "name": "moons-run",
        "training": {"epochs": 3, "batch_size": 32, "seed": 0, "device": "cpu"},
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "budget": {"n_trials": 3},
        "confirm": False,
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(data))
    url = f"sqlite:///{tmp_path / 'regsweep.db'}"

    done = _regsweep("run", "sweep.yaml", "--storage", url, cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    trials = optuna.load_study(study_name="moons-run", storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3  # the exact budget
    for trial in trials:
        attrs = trial.user_attrs
        assert 0.0 <= attrs["val_brier"] <= 1.0  # the class's own metrics_of ran
        assert 0.0 <= attrs["val_accuracy"] <= 1.0
        assert attrs["code"].startswith("noisy_moons sha256:")  # the plug-in that ran
        assert len(attrs["curves"]["val_loss"]) == 3
