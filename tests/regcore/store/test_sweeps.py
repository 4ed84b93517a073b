"""Sweeps: submit, read back, page, cancel, delete — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from regcore.spec import parse_spec
from regcore.store import (
    SweepNameTakenError,
    SweepNotFoundError,
    SweepStateError,
    claim_next_sweep,
    delete_sweep,
    finish_sweep,
    get_sweep,
    get_sweep_by_name,
    insert_sweep,
    list_sweeps,
    register_worker,
    reopen_sweep,
    request_cancel,
)

EXAMPLE = Path(__file__).parents[3] / "examples" / "sparse_regression.yaml"


def add(engine: sa.Engine, name: str, **kwargs: Any) -> str:
    return insert_sweep(engine, spec_json={"name": name}, name=name, **kwargs).id


def start(engine: sa.Engine, sweep_id: str) -> None:
    """The sweep claimed by a worker, as running sweeps are."""
    worker = register_worker(engine, host="test", pid=1, device="cpu")
    claim_next_sweep(engine, worker_id=worker.id, only=sweep_id)


def test_insert_then_get_round_trips_spec_and_aware_times(engine: sa.Engine) -> None:
    spec = parse_spec(yaml.safe_load(EXAMPLE.read_text()))
    deadline = datetime(2030, 1, 31, 8, 0, tzinfo=timezone(timedelta(hours=2)))
    inserted = insert_sweep(
        engine,
        spec_json=spec.to_json_dict(),
        name=spec.name,
        priority=3,
        owner="alice",
        deadline=deadline,
    )
    got = get_sweep(engine, inserted.id)
    assert got == inserted
    assert got == get_sweep_by_name(engine, spec.name)
    assert parse_spec(got.spec) == spec
    assert (got.status, got.study_name, got.priority, got.owner) == (
        "queued",
        spec.name,
        3,
        "alice",
    )
    assert got.deadline == deadline
    assert got.deadline.tzinfo == UTC
    assert got.created_at.tzinfo == UTC
    assert abs(got.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert (got.started_at, got.finished_at, got.cancel_requested) == (None, None, False)


def test_insert_refuses_a_taken_name(engine: sa.Engine) -> None:
    add(engine, "same")
    with pytest.raises(SweepNameTakenError, match="give the spec another name"):
        add(engine, "same")
    assert list_sweeps(engine)[1] == 1


def test_insert_refuses_a_naive_deadline(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.StatementError, match="give times a time zone"):
        add(engine, "naive", deadline=datetime(2030, 1, 1))


def test_unknown_id_raises_not_found_naming_the_id(engine: sa.Engine) -> None:
    for call in (get_sweep, request_cancel, delete_sweep):
        with pytest.raises(SweepNotFoundError, match="'nope'"):
            call(engine, "nope")
    with pytest.raises(SweepNotFoundError, match="'nope'"):
        reopen_sweep(engine, "nope", spec_json={})


def test_list_pages_newest_first_with_total_count(engine: sa.Engine) -> None:
    ids = [add(engine, f"s{i}") for i in range(7)]
    newest_first = ids[::-1]
    page, count = list_sweeps(engine, limit=3)
    assert ([s.id for s in page], count) == (newest_first[:3], 7)
    page, count = list_sweeps(engine, limit=3, offset=6)
    assert ([s.id for s in page], count) == (newest_first[6:], 7)
    assert list_sweeps(engine, offset=10) == ([], 7)


def test_list_filters_by_status(engine: sa.Engine) -> None:
    a, b, c = (add(engine, n) for n in "abc")
    start(engine, a)
    finish_sweep(engine, b, "failed", error="boom")
    assert [s.id for s in list_sweeps(engine, status="running")[0]] == [a]
    rows, count = list_sweeps(engine, status=["queued", "failed"])
    assert ({s.id for s in rows}, count) == ({b, c}, 2)
    with pytest.raises(ValueError, match="status must be one of"):
        list_sweeps(engine, status="done")


def test_reopen_queues_an_ended_sweep_again_with_its_new_spec(engine: sa.Engine) -> None:
    sweep_id = add(engine, "s")
    request_cancel(engine, sweep_id)
    deadline = datetime(2031, 1, 1, tzinfo=UTC)
    reopened = reopen_sweep(engine, sweep_id, spec_json={"name": "s", "more": 1}, deadline=deadline)
    assert reopened == get_sweep(engine, sweep_id)
    assert (reopened.status, reopened.spec, reopened.deadline) == (
        "queued",
        {"name": "s", "more": 1},
        deadline,
    )
    assert reopened.started_at is reopened.finished_at is reopened.error is None
    assert reopened.cancel_requested is False


def test_cancel_ends_queued_and_running_sweeps_at_once(engine: sa.Engine) -> None:
    queued, running = add(engine, "q"), add(engine, "r")
    start(engine, running)
    for sweep_id in (queued, running):
        cancelled = request_cancel(engine, sweep_id)
        assert (cancelled.status, cancelled.cancel_requested) == ("cancelled", True)
        assert cancelled.finished_at is not None
        assert request_cancel(engine, sweep_id) == cancelled  # again: no change


def test_cancel_refuses_a_finished_sweep(engine: sa.Engine) -> None:
    sweep_id = add(engine, "done")
    finish_sweep(engine, sweep_id, "completed")
    with pytest.raises(SweepStateError, match="already completed"):
        request_cancel(engine, sweep_id)


def test_delete_removes_the_sweep_and_returns_it(engine: sa.Engine) -> None:
    keep, gone = add(engine, "keep"), add(engine, "gone")
    deleted = delete_sweep(engine, gone)
    assert deleted.name == "gone"
    assert [s.id for s in list_sweeps(engine)[0]] == [keep]
    with pytest.raises(SweepNotFoundError):
        get_sweep(engine, gone)
    add(engine, "gone")  # the name is free again


def test_delete_refuses_a_running_sweep_unless_forced(engine: sa.Engine) -> None:
    sweep_id = add(engine, "busy")
    start(engine, sweep_id)
    with pytest.raises(SweepStateError, match="force=True"):
        delete_sweep(engine, sweep_id)
    assert delete_sweep(engine, sweep_id, force=True).id == sweep_id
    assert list_sweeps(engine)[1] == 0
