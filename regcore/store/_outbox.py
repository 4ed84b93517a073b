"""The outbox: webhook events written with the status change that ends a sweep, and claimed
by whoever delivers them.

Guarantees:

- An ended sweep with a ``notify.webhook_url`` has exactly one ``sweep.finished`` event, and
  a batch whose last sweep ended (with a batch ``webhook_url``) exactly one
  ``batch.finished`` event: :func:`record_ends` runs inside the transaction that ends the
  sweeps (``finish_sweep``, ``expire_sweeps``, ``request_cancel``), so the status change
  and its events commit together or not at all. A process killed after that commit loses
  nothing; one killed before it changed nothing.
- Which transaction ends a batch is decided under a lock on the batch's row (taken by
  :func:`lock_batches` before the sweeps are touched): otherwise two transactions ending
  a batch's last two sweeps at once would each see the other's sweep still running, and
  neither would close the batch.
- The event keeps the facts known then (``payload``: the sweep's name, status, error,
  times); what the study found is rendered by the deliverer at the first attempt and kept
  in ``body``, so every retry of one ``key`` sends the same bytes.
- :func:`claim_outbox_event` hands a due event to one deliverer at a time: the claim moves
  ``next_attempt_at`` ``lease_s`` ahead, so a deliverer killed mid-POST leaves the event to
  be taken again once the lease runs out (at least once, never lost; a receiver may see a
  key twice only when a deliverer dies between the receiver's answer and its record).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import sqlalchemy as sa

from regcore.store._engine import read, write
from regcore.store._tables import RUNNABLE_STATUSES, batches, outbox, sweeps, utcnow


@dataclass(frozen=True, kw_only=True)
class OutboxRow:
    """One webhook event; ``url`` may carry a secret (log only its scheme and host)."""

    id: int
    key: str
    kind: str
    sweep_id: str | None
    batch_name: str | None
    url: str
    payload: dict[str, Any]
    body: str | None
    created_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any]) -> Self:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


def _iso(stamp: datetime | None) -> str | None:
    return None if stamp is None else stamp.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _section(spec: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = spec.get(name)
    return value if isinstance(value, Mapping) else {}


def _facts(row: Mapping[Any, Any]) -> dict[str, Any]:
    """What the ending transaction knows of a sweep (the event, should its study be gone)."""
    spec = row["spec"] if isinstance(row["spec"], Mapping) else {}
    return {
        "sweep_id": row["id"],
        "name": row["name"],
        "study_name": row["study_name"],
        "status": row["status"],
        "workload": _section(spec, "workload").get("name"),
        "n_trials": _section(spec, "budget").get("n_trials"),
        "finished_at": _iso(row["finished_at"]),
        "error": row["error"],
    }


def _add(
    connection: sa.Connection, kind: str, url: str, payload: dict[str, Any], **of: Any
) -> None:
    now = utcnow()
    connection.execute(
        sa.insert(outbox).values(
            key=uuid.uuid4().hex,
            kind=kind,
            url=url,
            payload=payload,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
            **of,
        )
    )


def lock_batches(connection: sa.Connection, sweep_ids: Collection[str]) -> None:
    """Lock the rows of these sweeps' batches (PostgreSQL; SQLite's writers already take
    turns), in name order: call it first in a transaction that will end the sweeps."""
    names = connection.execute(
        sa.select(sweeps.c.batch_name)
        .where(sweeps.c.id.in_(list(sweep_ids)), sweeps.c.batch_name.is_not(None))
        .distinct()
    ).scalars()
    wanted = sorted(set(names))
    if wanted:
        connection.execute(
            sa.select(batches.c.name)
            .where(batches.c.name.in_(wanted))
            .order_by(batches.c.name)
            .with_for_update(key_share=True)  # NO KEY UPDATE: foreign key checks go on
        ).all()


def record_ends(connection: sa.Connection, sweep_ids: Collection[str]) -> None:
    """In the transaction that just ended ``sweep_ids``: their events, and their batches'
    (closing each batch whose last sweep this was)."""
    rows = connection.execute(sa.select(sweeps).where(sweeps.c.id.in_(list(sweep_ids))))
    names = set()
    for row in rows.mappings():
        url = _section(row["spec"] or {}, "notify").get("webhook_url")
        if url:
            _add(connection, "sweep.finished", url, _facts(row), sweep_id=row["id"])
        if row["batch_name"] is not None:
            names.add(row["batch_name"])
    for name in sorted(names):
        close_batch(connection, name)


def close_batch(connection: sa.Connection, name: str) -> bool:
    """Mark the batch finished if none of its sweeps can run any more, and write its event;
    True only for the transaction that did (hold the batch's lock: :func:`lock_batches`)."""
    still_running = (
        sa.select(sweeps.c.id)
        .where(sweeps.c.batch_name == name, sweeps.c.status.in_(RUNNABLE_STATUSES))
        .exists()
    )
    now = utcnow()
    closed = connection.execute(
        sa.update(batches)
        .where(batches.c.name == name, batches.c.finished_at.is_(None), ~still_running)
        .values(finished_at=now)
    )
    if closed.rowcount != 1:
        return False
    batch = connection.execute(sa.select(batches).where(batches.c.name == name)).mappings().one()
    if batch["webhook_url"]:
        members = connection.execute(
            sa.select(sweeps)
            .where(sweeps.c.batch_name == name)
            .order_by(sweeps.c.created_at, sweeps.c.name)
        )
        payload = {
            "name": name,
            "deadline": _iso(batch["deadline"]),
            "finished_at": _iso(now),
            "sweeps": [_facts(m) for m in members.mappings()],
        }
        _add(connection, "batch.finished", batch["webhook_url"], payload, batch_name=name)
    return True


def claim_outbox_event(
    engine: sa.Engine, *, lease_s: float, sweep_id: str | None = None
) -> OutboxRow | None:
    """The due event first in line (of sweep ``sweep_id`` alone, if given: ``regsweep
    run``'s workers deliver their own sweep's), leased to the caller for ``lease_s``, or None.

    Its ``attempts`` counts this claim; pass it to :func:`record_outbox_attempt`.
    """
    if lease_s <= 0:
        raise ValueError(f"lease_s must be positive, but got {lease_s=}")
    now = utcnow()
    due = outbox.c.next_attempt_at <= now
    if sweep_id is not None:
        due = sa.and_(due, outbox.c.sweep_id == sweep_id)
    with read(engine) as connection:  # an idle poll takes no write lock (SQLite's is global)
        if connection.execute(sa.select(outbox.c.id).where(due).limit(1)).first() is None:
            return None
    pick = (
        sa.select(outbox)
        .where(due)
        .order_by(outbox.c.next_attempt_at, outbox.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    with write(engine) as connection:
        row = connection.execute(pick).mappings().first()
        if row is None:
            return None
        leased = {
            "attempts": row["attempts"] + 1,
            "next_attempt_at": now + timedelta(seconds=lease_s),
        }
        connection.execute(sa.update(outbox).where(outbox.c.id == row["id"]).values(leased))
        return OutboxRow.from_mapping({**row, **leased})


def freeze_outbox_body(engine: sa.Engine, event_id: int, body: str) -> str:
    """Keep ``body`` as the event's, unless it has one already; the body it keeps."""
    with write(engine) as connection:
        connection.execute(
            sa.update(outbox)
            .where(outbox.c.id == event_id, outbox.c.body.is_(None))
            .values(body=body)
        )
        kept = connection.execute(sa.select(outbox.c.body).where(outbox.c.id == event_id))
        return str(kept.scalar_one())


def record_outbox_attempt(
    engine: sa.Engine,
    event_id: int,
    *,
    attempts: int,
    delivered: bool,
    next_attempt_at: datetime | None = None,
    error: str | None = None,
) -> bool:
    """Record how the claim numbered ``attempts`` went: delivered, or the next attempt's
    time (None: no further attempt) and ``error`` (no secrets in it). A failure reported
    after the lease ran out and another deliverer claimed the event changes nothing; a
    delivery always counts. True if the row changed."""
    update = sa.update(outbox).where(outbox.c.id == event_id, outbox.c.delivered_at.is_(None))
    if delivered:
        values: dict[str, Any] = {"delivered_at": utcnow(), "next_attempt_at": None}
    else:
        update = update.where(outbox.c.attempts == attempts)
        values = {"next_attempt_at": next_attempt_at, "last_error": error}
    with write(engine) as connection:
        return connection.execute(update.values(values)).rowcount == 1


def list_outbox_events(
    engine: sa.Engine, *, sweep_id: str | None = None, batch_name: str | None = None
) -> list[OutboxRow]:
    """Events in the order they were written, of one sweep or batch if given."""
    query = sa.select(outbox).order_by(outbox.c.id)
    if sweep_id is not None:
        query = query.where(outbox.c.sweep_id == sweep_id)
    if batch_name is not None:
        query = query.where(outbox.c.batch_name == batch_name)
    with read(engine) as connection:
        return [OutboxRow.from_mapping(r) for r in connection.execute(query).mappings()]
