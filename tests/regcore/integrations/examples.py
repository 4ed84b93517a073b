"""Running an example's sweep as a user would: ``regsweep run``, or the service with two
workers (real processes), the example registered through REGSWEEP_PLUGINS and PYTHONPATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import yaml

from tests.product import Product
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[3]


def plugin_env(example: str, module: str) -> dict[str, str]:
    folder = ROOT / "examples" / example
    return {"REGSWEEP_PLUGINS": module, "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}"}


def example_spec(example: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "examples" / example / "sweep.yaml").read_text())
    return data


def regsweep_run(
    tmp_path: Path, data: dict[str, Any], env: dict[str, str]
) -> list[optuna.trial.FrozenTrial]:
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(data))
    url = f"sqlite:///{tmp_path / 'regsweep.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "regcore.cli", "run", "sweep.yaml", "--storage", url],
        env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return optuna.load_study(study_name=data["name"], storage=url).trials


def through_the_service(
    tmp_path: Path, data: dict[str, Any], env: dict[str, str]
) -> list[dict[str, Any]]:
    """Submit ``data`` over REST, let two workers finish it; its trials as REST shows them."""
    product = Product(f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path)
    product.env.update(env)
    try:
        product.start_service()
        created = product.client.post("/v1/sweeps", json=data)
        assert created.status_code == 201, created.text
        sweep = created.json()
        product.start_workers(2)
        wait_until(lambda: product.sweep(sweep["id"])["status"] == "completed", 300, "the sweep")
        page: list[dict[str, Any]] = product.client.get(f"/v1/sweeps/{sweep['id']}/trials").json()[
            "data"
        ]
        return page
    finally:
        product.close()
