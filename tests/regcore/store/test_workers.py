"""Workers: registration, heartbeats, staleness, and what a deleted sweep does to them."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from regcore.store import (
    SweepNotFoundError,
    WorkerNotFoundError,
    claim_next_sweep,
    delete_sweep,
    deregister_worker,
    heartbeat_worker,
    insert_sweep,
    list_workers,
    register_worker,
    stale_workers,
)


def register(engine: sa.Engine, device: str = "cpu") -> str:
    return register_worker(engine, host="node-1", pid=os.getpid(), device=device).id


def age(engine: sa.Engine, worker_id: str, seconds: float) -> None:
    """Move the worker's last heartbeat into the past, as if it had gone silent."""
    past = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=seconds)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE workers SET last_heartbeat = :past WHERE id = :id"),
            {"past": past, "id": worker_id},
        )


def test_register_then_list_shows_the_worker_idle(engine: sa.Engine) -> None:
    worker = register_worker(engine, host="node-1", pid=123, device="cuda:1")
    assert list_workers(engine) == [worker]
    assert (worker.status, worker.current_sweep_id, worker.current_trial_number) == (
        "idle",
        None,
        None,
    )
    assert worker.started_at.tzinfo == UTC


def test_heartbeat_records_the_running_trial(engine: sa.Engine) -> None:
    worker_id = register(engine)
    sweep = insert_sweep(engine, spec_json={}, name="s")
    age(engine, worker_id, 30)
    heartbeat_worker(engine, worker_id, current_sweep_id=sweep.id, current_trial_number=7)
    [worker] = list_workers(engine)
    assert (worker.current_sweep_id, worker.current_trial_number, worker.status) == (
        sweep.id,
        7,
        "busy",
    )
    assert datetime.now(UTC) - worker.last_heartbeat < timedelta(seconds=10)
    heartbeat_worker(
        engine, worker_id, current_sweep_id=None, current_trial_number=None, status="stopping"
    )
    assert list_workers(engine)[0].status == "stopping"


def test_stale_workers_are_those_silent_past_the_grace_period(engine: sa.Engine) -> None:
    alive, silent = register(engine), register(engine)
    age(engine, silent, 120)
    assert [w.id for w in stale_workers(engine, grace_s=60)] == [silent]
    heartbeat_worker(engine, silent, current_sweep_id=None, current_trial_number=None)
    assert stale_workers(engine, grace_s=60) == []
    assert {w.id for w in list_workers(engine)} == {alive, silent}
    with pytest.raises(ValueError, match="grace_s"):
        stale_workers(engine, grace_s=0)


def test_deregister_removes_the_worker_and_its_heartbeat_says_register_again(
    engine: sa.Engine,
) -> None:
    worker_id = register(engine)
    deregister_worker(engine, worker_id)
    deregister_worker(engine, worker_id)  # already gone: fine
    assert list_workers(engine) == []
    with pytest.raises(WorkerNotFoundError, match="register again"):
        heartbeat_worker(engine, worker_id, current_sweep_id=None, current_trial_number=None)


def test_deleting_a_sweep_clears_it_from_its_workers(engine: sa.Engine) -> None:
    worker_id = register(engine)
    sweep = insert_sweep(engine, spec_json={}, name="s")
    claim_next_sweep(engine, worker_id=worker_id)
    delete_sweep(engine, sweep.id, force=True)
    assert list_workers(engine)[0].current_sweep_id is None
    with pytest.raises(SweepNotFoundError, match="stop its trial"):
        heartbeat_worker(engine, worker_id, current_sweep_id=sweep.id, current_trial_number=0)
