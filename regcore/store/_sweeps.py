"""Sweeps in the database: submit, read, page, cancel, delete.

Claiming and finishing, the calls workers make, are in :mod:`regcore.store._queue`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from regcore.store._engine import read, write
from regcore.store._outbox import close_batch, lock_batches, record_ends
from regcore.store._rows import SweepNameTakenError, SweepNotFoundError, SweepRow, SweepStateError
from regcore.store._tables import SWEEP_STATUSES, sweeps, utcnow


def new_id() -> str:
    """A short random id: 12 hex digits are plenty for the sweeps of one database."""
    return uuid.uuid4().hex[:12]


def check_status(status: str) -> str:
    if status not in SWEEP_STATUSES:
        raise ValueError(f"status must be one of {', '.join(SWEEP_STATUSES)}, but got {status=}")
    return status


def insert_sweep(
    engine: sa.Engine,
    *,
    spec_json: dict[str, Any],
    name: str,
    priority: int = 0,
    owner: str | None = None,
    deadline: datetime | None = None,
    study_name: str | None = None,
    sweep_id: str | None = None,
) -> SweepRow:
    """Queue a new sweep (with id ``sweep_id``, by default a new one); its study is named
    ``study_name`` (by default ``name``)."""
    values = sweep_values(
        spec_json=spec_json,
        name=name,
        priority=priority,
        owner=owner,
        deadline=deadline,
        study_name=study_name,
        sweep_id=sweep_id,
    )
    try:
        with write(engine) as connection:
            connection.execute(sa.insert(sweeps).values(values))
    except sa.exc.IntegrityError as error:
        if _name_exists(engine, name):
            raise SweepNameTakenError(
                f"a sweep named {name!r} exists; give the spec another name, or delete "
                "that sweep first"
            ) from error
        raise
    return SweepRow.from_mapping(values)


def sweep_values(
    *,
    spec_json: dict[str, Any],
    name: str,
    priority: int = 0,
    owner: str | None = None,
    deadline: datetime | None = None,
    study_name: str | None = None,
    batch_name: str | None = None,
    sweep_id: str | None = None,
) -> dict[str, Any]:
    """The row of a newly queued sweep."""
    return {
        "id": sweep_id or new_id(),
        "name": name,
        "study_name": study_name or name,
        "status": "queued",
        "priority": priority,
        "spec": spec_json,
        "owner": owner,
        "created_at": utcnow(),
        "started_at": None,
        "finished_at": None,
        "deadline": deadline,
        "cancel_requested": False,
        "error": None,
        "batch_name": batch_name,
        "note": None,
    }


def _name_exists(engine: sa.Engine, name: str) -> bool:
    with read(engine) as connection:
        found = connection.execute(sa.select(sweeps.c.id).where(sweeps.c.name == name))
        return found.first() is not None


def get_sweep(engine: sa.Engine, sweep_id: str) -> SweepRow:
    with read(engine) as connection:
        return _fetch(connection, sweeps.c.id == sweep_id, f"no sweep has id {sweep_id!r}")


def get_sweep_by_name(engine: sa.Engine, name: str) -> SweepRow:
    with read(engine) as connection:
        return _fetch(connection, sweeps.c.name == name, f"no sweep is named {name!r}")


def _fetch(connection: sa.Connection, where: sa.ColumnElement[bool], missing: str) -> SweepRow:
    row = connection.execute(sa.select(sweeps).where(where)).mappings().first()
    if row is None:
        raise SweepNotFoundError(f"{missing}; list the sweeps to see which exist")
    return SweepRow.from_mapping(row)


def list_sweeps(
    engine: sa.Engine,
    *,
    status: str | Sequence[str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[SweepRow], int]:
    """One page of sweeps, newest first, and how many match in all."""
    if limit < 0 or offset < 0:
        raise ValueError(f"limit and offset must be ≥ 0, but got {limit=}, {offset=}")
    where: list[sa.ColumnElement[bool]] = []
    if status is not None:
        wanted = [status] if isinstance(status, str) else list(status)
        where.append(sweeps.c.status.in_([check_status(s) for s in wanted]))
    page = (
        sa.select(sweeps)
        .where(*where)
        .order_by(sweeps.c.created_at.desc(), sweeps.c.id)
        .limit(limit)
        .offset(offset)
    )
    count = sa.select(sa.func.count()).select_from(sweeps).where(*where)
    with read(engine) as connection:
        rows = [SweepRow.from_mapping(r) for r in connection.execute(page).mappings()]
        return rows, int(connection.execute(count).scalar_one())


def reopen_sweep(
    engine: sa.Engine,
    sweep_id: str,
    *,
    spec_json: dict[str, Any],
    deadline: datetime | None = None,
) -> SweepRow:
    """Queue a sweep again to run more of it (``regsweep run`` resuming it): its spec
    replaced (a larger budget, a new deadline), its status ``queued`` and its start, end,
    error and cancel cleared, so its timeout counts from this start."""
    values: dict[str, Any] = {
        "spec": spec_json,
        "deadline": deadline,
        "status": "queued",
        "started_at": None,
        "finished_at": None,
        "error": None,
        "cancel_requested": False,
    }
    with write(engine) as connection:
        _update(connection, sweep_id, values)
        return _fetch(connection, sweeps.c.id == sweep_id, f"no sweep has id {sweep_id!r}")


def request_cancel(engine: sa.Engine, sweep_id: str) -> SweepRow:
    """Cancel a queued or running sweep: no trial of it starts from now on.

    The status becomes ``cancelled`` at once, so no live worker is needed for it to end;
    workers see ``cancel_requested`` and stop (or finish) their running trials. Cancelling a
    cancelled sweep changes nothing. The cancel that ends it writes its webhook events in
    the same transaction.
    """
    with write(engine) as connection:
        lock_batches(connection, [sweep_id])
        # Locked (PostgreSQL) so a worker cannot end it between this read and the update:
        # one ending, one event.
        lock = sa.select(sweeps.c.id).where(sweeps.c.id == sweep_id)
        connection.execute(lock.with_for_update(key_share=True)).all()
        sweep = _fetch(connection, sweeps.c.id == sweep_id, f"no sweep has id {sweep_id!r}")
        if sweep.status == "cancelled":
            return sweep
        if sweep.is_final:
            raise SweepStateError(
                f"sweep {sweep_id!r} is already {sweep.status}; only queued or running "
                "sweeps can be cancelled"
            )
        values = {"status": "cancelled", "cancel_requested": True, "finished_at": utcnow()}
        _update(connection, sweep_id, values)
        record_ends(connection, [sweep_id])  # its webhook events commit with the cancel
        return _fetch(connection, sweeps.c.id == sweep_id, f"no sweep has id {sweep_id!r}")


def delete_sweep(engine: sa.Engine, sweep_id: str, *, force: bool = False) -> SweepRow:
    """Remove the sweep's row and return it (its study is the caller's to delete).

    A running sweep is refused unless ``force``: its workers would lose their sweep mid-trial.
    Deleting the last sweep of a batch that could still run closes the batch (and writes its
    event), as that sweep's end would have.
    """
    with write(engine) as connection:
        lock_batches(connection, [sweep_id])
        sweep = _fetch(connection, sweeps.c.id == sweep_id, f"no sweep has id {sweep_id!r}")
        if sweep.status == "running" and not force:
            raise SweepStateError(
                f"sweep {sweep_id!r} is running; cancel it first, or delete with force=True"
            )
        connection.execute(sa.delete(sweeps).where(sweeps.c.id == sweep_id))
        if sweep.batch_name is not None:
            close_batch(connection, sweep.batch_name)
        return sweep


def _update(connection: sa.Connection, sweep_id: str, values: dict[str, Any]) -> None:
    result = connection.execute(sa.update(sweeps).where(sweeps.c.id == sweep_id).values(values))
    if result.rowcount == 0:
        raise SweepNotFoundError(
            f"no sweep has id {sweep_id!r}; list the sweeps to see which exist"
        )
