"""``pip install regsweep`` with no extras, in a fresh virtual environment: the regularizer
core trains, a local sweep runs to its budget, and the commands of the extras say which
extra to install. Slow (a real install): marked ``system``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICE_STACK = {"fastapi", "uvicorn", "plotly", "psycopg", "optuna-dashboard", "prometheus-client"}
SPEC = """\
name: plain-install
workload: {name: sparse_regression, params: {n_samples: 200, n_features: 20}}
search_space: {l1: {low: 1.0e-3, high: 1.0e-1, log: true}, l2: 0, method: [proximal, fused]}
training: {epochs: 3, batch_size: 200, device: cpu}
pruner: {name: none}
budget: {n_trials: 4}
"""
TRAIN = """\
import sys
import torch
from regcore.regularizers import Regularizer, sparsity
torch.manual_seed(0)
x = torch.randn(256, 20)
y = x[:, :3].sum(dim=1, keepdim=True)
model = torch.nn.Linear(20, 1)
reg = Regularizer(model, l1=0.05, l2=1e-4, method="proximal", exclude=["bias"])
opt = torch.optim.Adam(reg.param_groups(), lr=0.05)
reg.attach(opt)
for _ in range(300):
    opt.zero_grad()
    reg.penalize(torch.nn.functional.mse_loss(model(x), y)).backward()
    opt.step()
assert sparsity(model, exclude=["bias"]) > 0.5, sparsity(model, exclude=["bias"])
assert "optuna" not in sys.modules and "sqlalchemy" not in sys.modules
print("core ok")
"""


def sources(target: Path) -> Path:
    """A copy of what the package is built from, so building writes nothing here."""
    for name in ("regcore", "service", "worker", "cli"):  # regcore/'s symlinks point at the rest
        shutil.copytree(
            ROOT / name, target / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, target / name)
    return target


@pytest.mark.system
def test_a_plain_install_trains_and_sweeps_and_names_the_missing_extras(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python, regsweep = venv / "bin" / "python", venv / "bin" / "regsweep"
    package = sources(tmp_path / "src")
    constraints = ROOT / "constraints" / "dev.txt"  # the CPU build of torch, as CI pins it
    install = [str(python), "-m", "pip", "install", "--quiet", "-c", str(constraints)]
    subprocess.run([*install, str(package)], check=True, capture_output=True)

    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"], check=True, capture_output=True
    )
    installed = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"regsweep", "torch", "optuna", "sqlalchemy", "scikit-learn"} <= installed
    assert installed.isdisjoint(SERVICE_STACK), installed & SERVICE_STACK

    work = tmp_path / "work"
    work.mkdir()
    unset = {"REGSWEEP_SERVICE_URL", "REGSWEEP_DATABASE_URL", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in unset} | {"OMP_NUM_THREADS": "1"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False
        )

    trained = run(str(python), "-c", TRAIN)
    assert trained.returncode == 0, trained.stderr
    assert "core ok" in trained.stdout

    (work / "sweep.yaml").write_text(SPEC)
    url = f"sqlite:///{work / 'regsweep.db'}"
    swept = run(str(regsweep), "run", "sweep.yaml", "--workers", "2", "--storage", url)
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert "Results are in" in swept.stdout
    status = run(str(regsweep), "status", "plain-install", "--storage", url)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "completed" in status.stdout
    assert "4/4" in status.stdout

    for argv, extra in (
        (["serve"], "service"),
        (["dashboard"], "service"),
        (["report", "plain-install", "--storage", url], "reports"),
    ):
        refused = run(str(regsweep), *argv)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"pip install 'regsweep[{extra}]'" in refused.stdout
        assert "Traceback" not in refused.stdout + refused.stderr
