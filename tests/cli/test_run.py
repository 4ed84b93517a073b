"""``regsweep run``'s ends: a sweep whose every trial failed says why and exits 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_a_run_whose_every_trial_failed_says_why_and_exits_1(tmp_path: Path) -> None:
    spec = {
        "name": "all-fail",
        "workload": {"name": "test_misbehaving", "params": {"do": "raise"}},
        "search_space": {"l1": 0.0, "l2": {"low": 1e-5, "high": 1e-2, "log": True}},
        "training": {"epochs": 1, "device": "cpu"},
        "sampler": {"name": "random", "seed": 0},
        "budget": {"n_trials": 3},
        "confirm": False,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    env = {
        **os.environ,
        "REGSWEEP_PLUGINS": "tests.plugins.functions",
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "regcore.cli", "run", str(path), "--storage", "sqlite:///r.db"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "every trial failed (3); why:" in done.stdout
    assert "3 × error: RuntimeError: the data file is corrupt" in done.stdout
    assert "In your training script" not in done.stdout
