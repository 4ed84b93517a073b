"""Submitting sweeps while workers poll: over a slow link to PostgreSQL, and with the
submitting process killed (-9) between the steps of a submission.

A worker may claim a sweep the moment its row is visible: the study behind it must be
whole by then (its attributes and its λ = 0 baseline), and a submission killed half-way
must leave nothing a worker could claim. The service reaches PostgreSQL through a
:class:`tests.tcp_proxy.TcpProxy` that adds latency; the workers connect directly.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from regcore.spec import parse_spec
from regcore.store import (
    SweepNotFoundError,
    create_engine_for,
    create_storage,
    get_sweep_by_name,
    list_sweeps,
)
from tests.postgres import scratch_database
from tests.product import SPEC, Product
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
# One trial each: the baseline, which must be there and complete.
ONE_TRIAL = {**SPEC, "budget": {"n_trials": 1}, "training": {**SPEC["training"], "epochs": 1}}
# A process that submits one sweep straight to the database, as the service does: it says
# "ready" once connected, and submits when told (the test kills it mid-way).
SUBMITTER = """
import json, sys
from regcore.spec import parse_spec
from regcore.store import create_engine_for, create_storage
from regcore.sweeps.studies import create_sweep
url, spec = sys.argv[1], parse_spec(json.loads(sys.argv[2]))
engine, storage = create_engine_for(url, pool_size=1), create_storage(url, pool_size=1)
print("ready", flush=True)
sys.stdin.readline()
create_sweep(engine, storage, spec)
print("done", flush=True)
"""


@pytest.fixture
def database_url() -> Iterator[str]:
    """A scratch PostgreSQL database, migrated; dropped after the test."""
    with scratch_database("regsweep_submit") as url:
        yield url


@pytest.fixture
def slow_url(database_url: str) -> Iterator[str]:
    """``database_url`` through a proxy that adds 20 ms to every round trip."""
    server = sa.make_url(database_url)
    with TcpProxy((server.host or "127.0.0.1", server.port or 5432), latency_s=0.02) as proxy:
        yield server.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[Product]:
    """Two idle ``regsweep worker`` processes polling the database (directly)."""
    product = Product(database_url, tmp_path)
    product.start_workers(2)
    yield product
    product.close()


def ended(database_url: str) -> dict[str, str]:
    engine = create_engine_for(database_url, pool_size=1)
    try:
        rows, _ = list_sweeps(engine, limit=1000)
        return {r.name: r.status for r in rows}
    finally:
        engine.dispose()


def assert_completed_with_baseline(database_url: str, names: list[str]) -> None:
    statuses = ended(database_url)
    failed = {n: s for n, s in statuses.items() if n in names and s != "completed"}
    assert not failed, f"{len(failed)} of {len(names)} sweeps did not complete: {failed}"
    storage = create_storage(database_url, pool_size=1)
    try:
        for name in names:
            trials = optuna.load_study(study_name=name, storage=storage).trials
            baseline = [t for t in trials if t.user_attrs.get("baseline")]
            assert [t.state for t in baseline] == [TrialState.COMPLETE], (name, trials)
    finally:
        storage.engine.dispose()


def test_sweeps_submitted_over_a_slow_link_all_run_with_their_baseline(
    database_url: str, slow_url: str, workers: Product, tmp_path: Path
) -> None:
    service = Product(slow_url, tmp_path)  # the service's database is 20 ms away
    try:
        service.start_service()
        names = [f"race-{i}" for i in range(20)]
        for name in names:  # one at a time, as the workers poll
            response = service.client.post("/v1/sweeps", json={**ONE_TRIAL, "name": name})
            assert response.status_code == 201, response.text

        def all_final() -> bool:
            statuses = ended(database_url)
            return all(statuses.get(n) not in (None, "queued", "running") for n in names)

        wait_until(all_final, 300, "every sweep to end")
        assert_completed_with_baseline(database_url, names)
    finally:
        service.close()


class Submitter:
    """One submission in a process of its own, through a slow link, killed when told."""

    def __init__(self, url: str, name: str) -> None:
        spec = json.dumps({**ONE_TRIAL, "name": name})
        self.process = subprocess.Popen(
            [sys.executable, "-c", SUBMITTER, url, spec],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def go(self) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        return time.monotonic()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def finish(self) -> None:
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "done"
        assert self.process.wait(timeout=30) == 0


def study_names(storage: optuna.storages.BaseStorage) -> set[str]:
    return set(optuna.get_all_study_names(storage=storage))


def test_a_submission_killed_between_its_steps_can_be_submitted_again(
    database_url: str, slow_url: str, workers: Product, tmp_path: Path
) -> None:
    # How long a whole submission takes through the slow link: the kills fall inside it.
    probe = Submitter(slow_url, "killed-probe")
    started = probe.go()
    probe.finish()
    whole_s = time.monotonic() - started
    service = Product(database_url, tmp_path)
    service.start_service()
    engine = create_engine_for(database_url, pool_size=1)
    try:
        names, again = ["killed-probe"], []
        for k in range(1, 8):  # seven kills spread over the submission's steps
            name = f"killed-{k}"
            submitter = Submitter(slow_url, name)
            threading.Event().wait(whole_s * k / 8 - (time.monotonic() - submitter.go()))
            submitter.kill()
            names.append(name)
            try:
                get_sweep_by_name(engine, name)
                continue  # it was submitted, whole, before the kill (a slow machine's lag)
            except SweepNotFoundError:
                pass
            response = service.client.post("/v1/sweeps", json={**ONE_TRIAL, "name": name})
            assert response.status_code == 201, f"kill {k}/8 of {whole_s:.2f} s: {response.text}"
            again.append(name)
        assert len(again) >= 3, f"only {again} were killed before their sweep was queued"

        def all_final() -> bool:
            statuses = ended(database_url)
            return all(statuses.get(n) not in (None, "queued", "running") for n in names)

        wait_until(all_final, 300, "every sweep to end")
        assert_completed_with_baseline(database_url, names)
    finally:
        engine.dispose()
        service.close()


def test_a_study_a_killed_submission_left_is_removed_and_others_are_not(
    database_url: str, workers: Product
) -> None:
    storage = create_storage(database_url, pool_size=1)
    engine = create_engine_for(database_url, pool_size=1)
    server = sa.make_url(database_url)
    # 200 ms a round trip: the test sees each step of the submission, and kills after one.
    proxy = TcpProxy((server.host or "127.0.0.1", server.port or 5432), latency_s=0.2).start()
    try:
        # A study an earlier version's `regsweep run` made without a sweep: never removed.
        old = optuna.create_study(study_name="made-by-an-old-run", storage=storage)
        old_spec = parse_spec({**ONE_TRIAL, "name": "made-by-an-old-run"})
        old.set_user_attr("spec", old_spec.to_compact_dict())
        far = server.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        submitter = Submitter(far, "killed-half-way")
        submitter.go()

        def described() -> bool:
            if "killed-half-way" not in study_names(storage):
                return False
            study = optuna.load_study(study_name="killed-half-way", storage=storage)
            return "spec" in study.user_attrs

        wait_until(described, 60, "the study to be made and described")
        submitter.kill()  # its study is there; its sweep must not be (or not claimable)

        def gone() -> bool:
            try:
                get_sweep_by_name(engine, "killed-half-way")
            except SweepNotFoundError:
                return "killed-half-way" not in study_names(storage)
            return False

        # The workers' grace period is 4 s: they remove it soon after.
        wait_until(gone, 60, "the half-made study to be removed, with no sweep left")
        assert "made-by-an-old-run" in study_names(storage)
        assert ended(database_url) == {}
    finally:
        proxy.close()
        engine.dispose()
        storage.engine.dispose()
