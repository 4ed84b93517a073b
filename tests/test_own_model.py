"""examples/own_model: a user's own CNN with its own training loop, swept through
``regsweep run`` and through the service with two workers (real processes).

The package is not installed here: REGSWEEP_PLUGINS and PYTHONPATH register it, as they
would for a user who has not packaged their model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from regcore.spec import load_spec, parse_spec
from regcore.workloads import TrainingFunction, _registry, get_workload, load_plugin_modules
from tests.product import Product
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "examples" / "own_model"
ENV = {"REGSWEEP_PLUGINS": "own_model.train", "PYTHONPATH": f"{PACKAGE}{os.pathsep}{ROOT}"}


@pytest.fixture(scope="module", autouse=True)
def _registered() -> Iterator[None]:
    # This process reads the specs too. Its registry is put back afterwards: a plug-in left
    # registered would be imported by every later test's training-function child, whose
    # sys.path no longer has the example's folder.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
        patch.setattr(_registry, "_MODULES", list(_registry._MODULES))
        patch.syspath_prepend(str(PACKAGE))
        load_plugin_modules(["own_model.train"])
        yield


def n_params(width: int) -> int:
    from own_model.train import build

    return sum(p.numel() for p in build(width, 0.0).parameters())


def small(**changes: Any) -> dict[str, Any]:
    """The example's spec, made small enough for a test."""
    data: dict[str, Any] = yaml.safe_load((PACKAGE / "sweep.yaml").read_text())
    data["workload"]["params"] = {"n_train": 256, "n_val": 128, "batch_size": 32}
    data["search_space"]["params"] = {"width": {"choices": [4, 8]}}
    data["training"] = {"epochs": 4, "seed": 0, "device": "cpu"}
    return {**data, **changes}


def test_the_example_spec_is_valid_and_names_the_training_function() -> None:
    spec = load_spec(PACKAGE / "sweep.yaml")
    assert isinstance(get_workload(spec.workload.name), TrainingFunction)
    assert spec.objectives[0].metric == "val_top3"


def test_the_example_through_regsweep_run(tmp_path: Path) -> None:
    data = small(name="own-run")
    # One worker, random points and an lr that cannot learn for some: the median pruner
    # stops those deterministically.
    data["search_space"]["lr"] = {"choices": [1.0e-5, 1.0e-2]}
    data["sampler"] = {"name": "random", "seed": 0}
    data["pruner"] = {"name": "median", "options": {"n_startup_trials": 2, "n_warmup_steps": 0}}
    data["budget"] = {"n_trials": 5}
    data["confirm"] = False
    parse_spec(data)
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
    trials = optuna.load_study(study_name="own-run", storage=url).trials
    states = [t.state for t in trials]
    assert len(trials) == 5  # the exact budget
    assert TrialState.PRUNED in states
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete
    for trial in complete:
        assert trial.user_attrs["n_params"] == n_params(trial.params["width"])  # params reached
        assert trial.user_attrs["code"].startswith("own_model.train sha256:")
        assert len(trial.user_attrs["curves"]["val_top3"]) == 4
        assert {"sparsity", "l1_norm", "train_loss"} <= set(trial.user_attrs)


def test_the_example_through_the_service_with_two_workers(tmp_path: Path) -> None:
    product = Product(f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path)
    product.env.update(ENV)
    data = small(name="own-service", pruner={"name": "none"}, budget={"n_trials": 4})
    try:
        product.start_service()
        created = product.client.post("/v1/sweeps", json=data)
        assert created.status_code == 201, created.text
        sweep = created.json()
        product.start_workers(2)
        wait_until(lambda: product.sweep(sweep["id"])["status"] == "completed", 300, "the sweep")
        detail = product.sweep(sweep["id"])
        assert detail["trials"]["COMPLETE"] == 4
        page = product.client.get(f"/v1/sweeps/{sweep['id']}/trials").json()["data"]
        for trial in page:
            assert trial["user_attrs"]["n_params"] == n_params(trial["params"]["width"])
        workloads = product.client.get("/v1/workloads").json()["data"]
        assert {"name": "own_cnn", "kind": "training_function"}.items() <= next(
            w for w in workloads if w["name"] == "own_cnn"
        ).items()
    finally:
        product.close()
