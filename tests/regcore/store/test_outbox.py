"""The outbox on SQLite and PostgreSQL: a sweep's end writes its webhook events in the same
transaction, exactly once, and deliverers claim each event one at a time."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from regcore.store import (
    OutboxRow,
    claim_outbox_event,
    close_batch_if_done,
    delete_sweep,
    expire_sweeps,
    finish_sweep,
    freeze_outbox_body,
    get_batch,
    insert_batch,
    insert_sweep,
    list_outbox_events,
    record_outbox_attempt,
    request_cancel,
)

HOOK = "https://hooks.example.com/T0/SECRET?token=s3cret"
_OUTBOX = sa.table("outbox", sa.column("id"))


@pytest.fixture(autouse=True)
def _empty_outbox(engine: sa.Engine) -> None:
    # The PostgreSQL database is shared by the module's tests; its sweeps are emptied by
    # the store's fixture, the outbox here.
    with engine.begin() as connection:
        connection.execute(sa.delete(_OUTBOX))


def add(engine: sa.Engine, name: str, *, url: str | None = HOOK, **kwargs: Any) -> str:
    spec = {"name": name, "workload": {"name": "digits_mlp"}, "budget": {"n_trials": 7}}
    if url is not None:
        spec["notify"] = {"webhook_url": url}
    return insert_sweep(engine, spec_json=spec, name=name, **kwargs).id


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_the_call_that_ends_a_sweep_writes_its_event_once(engine: sa.Engine) -> None:
    sweep_id = add(engine, "hooked")
    assert finish_sweep(engine, sweep_id, "failed", error="boom") is True
    assert finish_sweep(engine, sweep_id, "completed") is False  # already over: no second

    [event] = list_outbox_events(engine)
    assert (event.kind, event.sweep_id, event.batch_name, event.url) == (
        "sweep.finished",
        sweep_id,
        None,
        HOOK,
    )
    assert len(event.key) == 32
    assert int(event.key, 16) >= 0
    assert event.payload["status"] == "failed"
    assert event.payload["error"] == "boom"
    assert event.payload["name"] == event.payload["study_name"] == "hooked"
    assert (event.payload["workload"], event.payload["n_trials"]) == ("digits_mlp", 7)
    assert event.payload["finished_at"].endswith("Z")
    assert event.attempts == 0
    assert event.body is None
    assert event.delivered_at is None
    assert event.next_attempt_at is not None
    assert event.next_attempt_at <= datetime.now(UTC)  # due at once


def test_a_sweep_without_a_webhook_writes_no_event(engine: sa.Engine) -> None:
    finish_sweep(engine, add(engine, "quiet", url=None), "completed")
    request_cancel(engine, add(engine, "quiet-cancelled", url=None))
    assert list_outbox_events(engine) == []


def test_a_cancel_writes_the_event_once(engine: sa.Engine) -> None:
    sweep_id = add(engine, "cancelled")
    request_cancel(engine, sweep_id)
    request_cancel(engine, sweep_id)  # cancelled already: nothing changes
    assert finish_sweep(engine, sweep_id, "completed") is False
    [event] = list_outbox_events(engine, sweep_id=sweep_id)
    assert event.payload["status"] == "cancelled"


def test_expiring_sweeps_writes_the_events_of_those_it_ended(engine: sa.Engine) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    late = add(engine, "late", deadline=past)
    silent = add(engine, "late-silent", deadline=past, url=None)
    on_time = add(engine, "on-time", deadline=datetime.now(UTC) + timedelta(hours=1))
    assert sorted(expire_sweeps(engine)) == sorted([late, silent])
    assert expire_sweeps(engine) == []
    assert [e.sweep_id for e in list_outbox_events(engine)] == [late]
    assert list_outbox_events(engine)[0].payload["status"] == "deadline_reached"
    assert list_outbox_events(engine, sweep_id=on_time) == []


def test_the_event_outlives_its_deleted_sweep(engine: sa.Engine) -> None:
    sweep_id = add(engine, "deleted")
    request_cancel(engine, sweep_id)
    delete_sweep(engine, sweep_id)
    [event] = list_outbox_events(engine, sweep_id=sweep_id)
    assert event.payload["name"] == "deleted"


def _batch(engine: sa.Engine, name: str, n: int) -> list[str]:
    specs = [
        {"name": f"{name}-{i}", "notify": {"webhook_url": HOOK}, "budget": {"n_trials": 2}}
        for i in range(n)
    ]
    _, rows = insert_batch(
        engine,
        name=name,
        spec_json={"name": name},
        sweeps_json=specs,
        webhook_url=HOOK + "&batch=1",
    )
    return [r.id for r in rows]


def test_the_batchs_last_sweep_writes_the_batch_event_with_its_own(engine: sa.Engine) -> None:
    name = unique("nightly")
    first, second = _batch(engine, name, 2)
    finish_sweep(engine, first, "completed")
    assert list_outbox_events(engine, batch_name=name) == []
    assert get_batch(engine, name).finished_at is None

    request_cancel(engine, second)
    assert get_batch(engine, name).finished_at is not None
    [event] = list_outbox_events(engine, batch_name=name)
    assert (event.kind, event.url, event.sweep_id) == ("batch.finished", HOOK + "&batch=1", None)
    assert [(s["sweep_id"], s["status"]) for s in event.payload["sweeps"]] == [
        (first, "completed"),
        (second, "cancelled"),
    ]
    assert event.payload["name"] == name
    assert close_batch_if_done(engine, name) is False  # closed once, by that cancel
    assert len(list_outbox_events(engine, batch_name=name)) == 1


def test_deleting_a_batchs_last_open_sweep_closes_the_batch(engine: sa.Engine) -> None:
    name = unique("pruned")
    first, second = _batch(engine, name, 2)
    finish_sweep(engine, first, "completed")
    delete_sweep(engine, second)  # queued: it will never end, so the batch ends now

    assert get_batch(engine, name).finished_at is not None
    [event] = list_outbox_events(engine, batch_name=name)
    assert [s["sweep_id"] for s in event.payload["sweeps"]] == [first]


def test_a_batch_ended_by_many_transactions_at_once_is_closed_once(engine: sa.Engine) -> None:
    """Each of N threads ends one sweep of the batch at the same moment: whichever ends the
    last one must see the others' ends, or no one would close the batch (the batch's row
    lock orders them on PostgreSQL; SQLite's writers take turns anyway)."""
    for round_ in range(5):
        name = unique(f"race{round_}")
        ids = _batch(engine, name, 4)
        start = threading.Barrier(len(ids))

        def end(sweep_id: str, index: int, start: threading.Barrier = start) -> None:
            start.wait()
            if index % 2:
                request_cancel(engine, sweep_id)
            else:
                finish_sweep(engine, sweep_id, "completed")

        threads = [threading.Thread(target=end, args=(s, i)) for i, s in enumerate(ids)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert get_batch(engine, name).finished_at is not None
        assert len(list_outbox_events(engine, batch_name=name)) == 1


def test_a_claim_leases_the_event_to_one_deliverer(engine: sa.Engine) -> None:
    sweep_id = add(engine, "leased")
    finish_sweep(engine, sweep_id, "completed")
    claimed = claim_outbox_event(engine, lease_s=60)
    assert claimed is not None
    assert claimed.attempts == 1
    assert claimed.next_attempt_at is not None
    assert claimed.next_attempt_at > datetime.now(UTC) + timedelta(seconds=50)
    assert claim_outbox_event(engine, lease_s=60) is None  # leased: nobody else takes it


def test_an_event_whose_lease_ran_out_is_claimed_again(engine: sa.Engine) -> None:
    """A deliverer killed mid-POST never records its attempt: the event comes back."""
    finish_sweep(engine, add(engine, "abandoned"), "completed")
    first = claim_outbox_event(engine, lease_s=0.2)
    assert first is not None
    time.sleep(0.3)
    again = claim_outbox_event(engine, lease_s=60)
    assert again is not None
    assert (again.key, again.attempts) == (first.key, 2)
    # The first deliverer's late failure report changes nothing: the claim is not its own.
    later = datetime.now(UTC)
    assert not record_outbox_attempt(
        engine, first.id, attempts=1, delivered=False, next_attempt_at=later, error="x"
    )
    assert claim_outbox_event(engine, lease_s=60) is None


def test_attempts_are_recorded_until_delivered(engine: sa.Engine) -> None:
    finish_sweep(engine, add(engine, "retried"), "completed")
    event = claim_outbox_event(engine, lease_s=60)
    assert event is not None
    # Due in 2 s: long enough that a loaded machine still claims before it, short to wait for.
    soon = datetime.now(UTC) + timedelta(seconds=2)
    assert record_outbox_attempt(
        engine, event.id, attempts=1, delivered=False, next_attempt_at=soon, error="HTTP 503"
    )
    assert claim_outbox_event(engine, lease_s=60) is None  # not due yet
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    event = claim_outbox_event(engine, lease_s=60)
    assert event is not None
    assert event.attempts == 2
    assert event.last_error == "HTTP 503"
    assert record_outbox_attempt(engine, event.id, attempts=2, delivered=True)
    [done] = list_outbox_events(engine)
    assert done.delivered_at is not None
    assert done.next_attempt_at is None
    assert done.last_error == "HTTP 503"  # what held it up, kept for whoever asks
    assert not record_outbox_attempt(engine, event.id, attempts=2, delivered=True)  # once


def test_a_final_failure_is_never_attempted_again(engine: sa.Engine) -> None:
    finish_sweep(engine, add(engine, "refused"), "completed")
    event = claim_outbox_event(engine, lease_s=60)
    assert event is not None
    record_outbox_attempt(engine, event.id, attempts=1, delivered=False, error="HTTP 410")
    [given_up] = list_outbox_events(engine)
    assert (given_up.next_attempt_at, given_up.delivered_at) == (None, None)
    assert given_up.last_error == "HTTP 410"
    assert claim_outbox_event(engine, lease_s=0.01) is None


def test_the_first_body_is_kept_for_every_retry(engine: sa.Engine) -> None:
    finish_sweep(engine, add(engine, "frozen"), "completed")
    [event] = list_outbox_events(engine)
    assert freeze_outbox_body(engine, event.id, '{"n": 1}') == '{"n": 1}'
    assert freeze_outbox_body(engine, event.id, '{"n": 2}') == '{"n": 1}'
    assert list_outbox_events(engine)[0].body == '{"n": 1}'


def test_concurrent_deliverers_claim_each_event_once(engine: sa.Engine) -> None:
    for i in range(12):
        finish_sweep(engine, add(engine, f"many-{i}"), "completed")
    claimed: list[OutboxRow] = []
    lock = threading.Lock()

    def deliverer() -> None:
        while (event := claim_outbox_event(engine, lease_s=60)) is not None:
            with lock:
                claimed.append(event)

    threads = [threading.Thread(target=deliverer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    keys = [e.key for e in claimed]
    assert len(keys) == len(set(keys)) == 12


def test_a_nonsensical_lease_is_refused(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="lease_s=0"):
        claim_outbox_event(engine, lease_s=0)


def test_a_claim_for_one_sweep_takes_only_that_sweeps_events(engine: sa.Engine) -> None:
    mine, theirs = add(engine, unique("mine")), add(engine, unique("theirs"))
    finish_sweep(engine, theirs, "completed")  # theirs is first in line
    finish_sweep(engine, mine, "completed")
    event = claim_outbox_event(engine, lease_s=60, sweep_id=mine)
    assert event is not None
    assert event.sweep_id == mine
    assert claim_outbox_event(engine, lease_s=60, sweep_id=mine) is None
    (left,) = [e for e in list_outbox_events(engine) if e.sweep_id == theirs]
    assert left.attempts == 0  # untouched, due for a deliverer that may deliver it
    assert left.next_attempt_at is not None
    assert left.next_attempt_at <= datetime.now(UTC)
