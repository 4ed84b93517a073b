"""examples/transformers: a small BERT fine-tuned by HF's Trainer as a training function,
swept by ``regsweep run`` (real worker processes): TrialCallback reports each epoch's
evaluation, the median pruner stops the trials that cannot learn, and the trial records what
the Regularize callback's Regularizer did to the weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "transformers"
ENV = {"REGSWEEP_PLUGINS": "tiny_bert", "PYTHONPATH": f"{EXAMPLE}{os.pathsep}{ROOT}"}


def run_sweep(tmp_path: Path, data: dict[str, Any]) -> list[optuna.trial.FrozenTrial]:
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(data))
    url = f"sqlite:///{tmp_path / 'regsweep.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "regcore.cli", "run", "sweep.yaml", "--storage", url],
        env={**os.environ, **ENV, "OMP_NUM_THREADS": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return optuna.load_study(study_name=data["name"], storage=url).trials


def test_the_example_through_regsweep_run_prunes_and_records(tmp_path: Path) -> None:
    data = yaml.safe_load((EXAMPLE / "sweep.yaml").read_text())
    data["training"] = {"epochs": 2, "seed": 0, "device": "cpu"}
    # Random points and an lr that cannot learn for some: the median pruner stops those.
    data["search_space"]["lr"] = {"choices": [1.0e-6, 1.0e-2]}
    data["workload"]["params"] = {"n_train": 64, "n_val": 64}
    data["sampler"] = {"name": "random", "seed": 1}
    data["pruner"] = {"name": "median", "options": {"n_startup_trials": 2, "n_warmup_steps": 0}}
    data["budget"] = {"n_trials": 4}
    trials = run_sweep(tmp_path, data)
    states = [t.state for t in trials]
    assert len(trials) == 4
    assert TrialState.PRUNED in states, states
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete
    for trial in complete:
        assert len(trial.user_attrs["curves"]["val_accuracy"]) == 2  # one report per epoch
        assert trial.user_attrs["curves"]["val_accuracy"][-1] == pytest.approx(trial.values[0])
        assert {"sparsity", "l1_norm"} <= set(trial.user_attrs)  # Regularize's Regularizer
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert all(t.params["lr"] == 1.0e-6 for t in pruned)
