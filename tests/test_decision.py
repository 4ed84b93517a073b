"""The decision does not depend on how the sweep ran: the same spec gives the same
recommendation at any worker count, through ``regsweep run`` or through the service and
its workers, on one machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from regcore.confirm import Confirmation, confirmation
from regcore.spec import parse_spec
from regcore.store import create_storage
from regcore.worker.local import LocalOptions, run_local_sweep
from regcore.worker.options import WorkerOptions
from tests.product import Product
from tests.waiting import wait_until

# No sampler, no pruner: what a spec gets by default (here a path: λ₁ is a log range).
SPEC: dict[str, Any] = {
    "name": "decision",
    "workload": {"name": "sparse_regression", "params": {"n_samples": 200, "n_features": 20}},
    "search_space": {
        "l1": {"low": 1e-3, "high": 1.0, "log": True},
        "l2": 0.0,
        "method": ["proximal", "fused"],
    },
    "optimizer": {"lr": 0.03},
    "training": {"epochs": 6, "batch_size": 50, "device": "cpu"},
    "budget": {"n_trials": 30},
    "confirm": {"seeds": 3, "top": 2},
}


def decided(study: optuna.Study) -> Confirmation:
    result = confirmation(study)
    assert result is not None
    assert result.recommended is not None
    assert result.pending == 0
    return result


def same(a: Confirmation, b: Confirmation) -> None:
    assert a.recommended is not None
    assert b.recommended is not None
    assert (a.recommended.key, a.recommended.method, a.beats_baseline) == (
        b.recommended.key,
        b.recommended.method,
        b.beats_baseline,
    )
    assert (a.recommended.l1, a.recommended.l2) == pytest.approx(
        (b.recommended.l1, b.recommended.l2)
    )
    assert [s.mean for s in a.settings] == pytest.approx([s.mean for s in b.settings], rel=1e-5)


def test_the_default_strategy_is_a_path_with_a_confirmation() -> None:
    spec = parse_spec(SPEC)
    assert (spec.sampler.name, spec.pruner.name, spec.confirm.enabled) == ("path", "none", True)


def test_the_same_decision_at_any_worker_count_and_through_the_service(tmp_path: Path) -> None:
    runs = []
    for workers in (1, 2):
        url = f"sqlite:///{tmp_path / f'run{workers}.db'}"
        run = run_local_sweep(
            parse_spec(SPEC), LocalOptions(worker=WorkerOptions(database_url=url), workers=workers)
        )
        assert run.outcome == "completed"
        runs.append(decided(run.study))
    url = f"sqlite:///{tmp_path / 'service.db'}"
    product = Product(url, tmp_path)
    try:
        product.start_service()
        created = product.client.post("/v1/sweeps", json=SPEC)
        assert created.status_code == 201, created.text
        sweep_id = created.json()["id"]
        product.start_workers(2)
        wait_until(lambda: product.sweep(sweep_id)["status"] == "completed", 300, "the sweep")
    finally:
        product.close()
    storage = create_storage(url)
    try:
        served = decided(optuna.load_study(study_name="decision", storage=storage))
    finally:
        storage.remove_session()
    same(runs[0], runs[1])
    same(runs[0], served)
