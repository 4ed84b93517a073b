"""The threads a worker gives torch: workers on one machine share its cores, however they
were started, and the same trial gives the same value through ``regsweep run`` and through
the service.

The trials are tests/plugins/workloads.py's: each reports ``torch.get_num_threads()`` as read
inside the process that trained it (the worker for ``test_threads_cnn``, the training
function's child for ``test_threads_function``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from regcore.spec import parse_spec
from regcore.store import create_engine_for, create_storage, list_workers
from regcore.worker.local import LocalOptions, run_local_sweep
from regcore.worker.options import WorkerOptions
from regcore.worker.threads import ThreadShare, available_cores, share
from regcore.workloads import load_plugin_modules
from tests.conftest import ROOT
from tests.product import Product
from tests.waiting import wait_until

PLUGINS = ("tests.plugins.workloads",)
CORES = available_cores()


def spec(name: str, workload: str = "test_threads_cnn", **changes: Any) -> dict[str, Any]:
    """Four fixed points (a grid), so that every way of running trains the same trials."""
    own_loop = workload == "test_threads_cnn"
    # A size whose sums differ between 1 and 2 threads (at 2 cores the λ = 0 and λ₂ = 1e-4
    # trials' values do): the comparison below can fail.
    params = {"train_size": 300, "hidden": [16, 32]} if own_loop else {}
    training = {"epochs": 2, "device": "cpu"} | ({"batch_size": 64} if own_loop else {})
    return {
        "name": name,
        "workload": {"name": workload, "params": params},
        "search_space": {"l1": 0.0, "l2": {"choices": [1e-4, 1e-3, 1e-2, 1e-1]}, "method": "fused"},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": training,
        "sampler": {"name": "grid"},
        "budget": {"n_trials": 5},  # the four points and the λ = 0 baseline
        "confirm": False,
        **changes,
    }


@pytest.fixture(autouse=True)
def _plugins_and_no_omp(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plug-in here and in every worker; no OMP_NUM_THREADS, which would fix the count."""
    load_plugin_modules(PLUGINS)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def finished(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    storage = create_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        return [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    finally:
        storage.remove_session()


def values_by_point(trials: list[optuna.trial.FrozenTrial]) -> dict[float, float]:
    return {float(t.user_attrs["l2"]): t.value for t in trials if t.value is not None}


def run_locally(tmp_path: Path, body: dict[str, Any], workers: int) -> list[Any]:
    url = f"sqlite:///{tmp_path / 'run.db'}"
    options = WorkerOptions(database_url=url, plugins=PLUGINS)
    run = run_local_sweep(parse_spec(body), LocalOptions(worker=options, workers=workers))
    assert run.outcome == "completed"
    return finished(url, body["name"])


@pytest.fixture
def product(tmp_path: Path) -> Iterator[Product]:
    product = Product(f"sqlite:///{tmp_path / 'service.db'}", tmp_path)
    product.env.pop("OMP_NUM_THREADS", None)
    product.env["REGSWEEP_PLUGINS"] = ",".join(PLUGINS)
    product.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.getenv("PYTHONPATH")]))
    try:
        yield product
    finally:
        product.close()


def run_through_service(product: Product, body: dict[str, Any]) -> list[Any]:
    created = product.client.post("/v1/sweeps", json=body)
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    wait_until(lambda: product.sweep(sweep_id)["status"] == "completed", 300, "the sweep")
    return finished(str(product.env["REGSWEEP_DATABASE_URL"]), body["name"])


def registered(product: Product) -> int:
    engine = create_engine_for(str(product.env["REGSWEEP_DATABASE_URL"]), pool_size=1)
    try:
        return len(list_workers(engine))
    finally:
        engine.dispose()


# -- the share ------------------------------------------------------------------------------------


def test_a_share_divides_the_cores_among_the_workers_on_the_host() -> None:
    live = [1]
    threads = ThreadShare(
        threads=None, started_with=2, count_live=lambda: live[0], every_s=0, cores=8
    )
    assert threads.apply() == 4  # started with 2, only itself registered yet
    live[0] = 4
    assert threads.apply() == 2  # two more came by hand
    live[0] = 1
    assert threads.apply() == 4  # they left: never fewer than those started together
    live[0] = 16
    assert threads.apply() == 1  # at least one


def test_threads_given_or_omp_num_threads_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    crowded = {"count_live": lambda: 8, "every_s": 0, "cores": 8}
    assert ThreadShare(threads=3, started_with=1, **crowded).apply() == 3  # type: ignore[arg-type]
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert ThreadShare(threads=None, started_with=1, **crowded).apply() == 5  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threads must be >= 1"):
        ThreadShare(threads=0, started_with=1, **crowded)  # type: ignore[arg-type]


def test_the_live_workers_are_re_read_at_most_every_every_s() -> None:
    reads: list[int] = []

    def count() -> int:
        reads.append(1)
        return 2

    threads = ThreadShare(threads=None, started_with=1, count_live=count, every_s=3600, cores=2)
    assert [threads.apply(), threads.apply()] == [1, 1]
    assert len(reads) == 1


# -- real workers --------------------------------------------------------------------------------


def test_run_with_two_workers_gives_each_half_the_cores(tmp_path: Path) -> None:
    trials = run_locally(tmp_path, spec("run-threads"), workers=2)
    assert len(trials) == 5
    assert {t.user_attrs["torch_threads"] for t in trials} == {share(CORES, 2)}


def test_a_training_functions_child_gets_its_workers_share(tmp_path: Path) -> None:
    body = spec("function-threads", workload="test_threads_function")
    trials = run_locally(tmp_path, body, workers=2)
    assert len(trials) == 5
    # torch_threads: what the child read (a metric it returned); recorded as the trial's.
    assert {t.user_attrs["torch_threads"] for t in trials} == {share(CORES, 2)}


def test_workers_started_by_hand_beside_each_other_share_the_cores(product: Product) -> None:
    product.start_service()
    product.start_workers(1)
    wait_until(lambda: registered(product) == 1, 60, "the first worker to register")
    product.start_workers(1)
    wait_until(lambda: registered(product) == 2, 60, "the second worker to register")
    trials = run_through_service(product, spec("by-hand"))
    assert {t.user_attrs["torch_threads"] for t in trials} == {share(CORES, 2)}


def test_the_same_trial_gives_the_same_value_through_run_and_through_the_service(
    tmp_path: Path, product: Product
) -> None:
    body = spec("same-values")
    ran = run_locally(tmp_path, body, workers=2)
    product.start_service()
    product.workers.append(product._regsweep("worker", "--workers", "2", "--device", "cpu"))
    served = run_through_service(product, body)
    assert {t.user_attrs["torch_threads"] for t in served} == {share(CORES, 2)}
    assert len(values_by_point(ran)) == 5
    # Equal, not close: the same threads sum in the same order.
    assert values_by_point(served) == values_by_point(ran)
