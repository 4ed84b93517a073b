"""Worker processes in the database: who is working on what, and who went silent.

A worker registers on start, beats every ``HEARTBEAT_S`` seconds with its current sweep and
trial, and deregisters on a clean stop. One killed outright stops beating; after the grace
period :func:`stale_workers` names it, so another worker can fail its trial for a retry and
remove its row.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from regcore.store._engine import read, write
from regcore.store._rows import SweepNotFoundError, WorkerNotFoundError, WorkerRow
from regcore.store._sweeps import new_id
from regcore.store._tables import RUNNABLE_STATUSES, WORKER_STATUSES, sweeps, utcnow, workers


def register_worker(engine: sa.Engine, *, host: str, pid: int, device: str) -> WorkerRow:
    now = utcnow()
    row = WorkerRow(
        id=new_id(),
        host=host,
        pid=pid,
        device=device,
        started_at=now,
        last_heartbeat=now,
        current_sweep_id=None,
        current_trial_number=None,
        status="idle",
    )
    with write(engine) as connection:
        connection.execute(sa.insert(workers).values(row.__dict__))
    return row


def heartbeat_worker(
    engine: sa.Engine,
    worker_id: str,
    *,
    current_sweep_id: str | None,
    current_trial_number: int | None,
    status: str | None = None,
    claims: int | None = None,
    claim_seconds: float | None = None,
) -> None:
    """Record that the worker is alive and what it runs (``status``: busy/idle by default),
    and, when given, its claim totals so far."""
    if status is None:
        status = "idle" if current_sweep_id is None else "busy"
    if status not in WORKER_STATUSES:
        raise ValueError(f"status must be one of {', '.join(WORKER_STATUSES)}, but got {status=}")
    values: dict[str, Any] = {
        "last_heartbeat": utcnow(),
        "current_sweep_id": current_sweep_id,
        "current_trial_number": current_trial_number,
        "status": status,
    }
    if claims is not None:
        values["claims"] = claims
    if claim_seconds is not None:
        values["claim_seconds"] = claim_seconds
    try:
        with write(engine) as connection:
            result = connection.execute(
                sa.update(workers).where(workers.c.id == worker_id).values(values)
            )
    except sa.exc.IntegrityError as error:
        raise SweepNotFoundError(
            f"sweep {current_sweep_id!r} no longer exists (deleted); stop its trial and "
            "claim another sweep"
        ) from error
    if result.rowcount == 0:
        raise WorkerNotFoundError(
            f"worker {worker_id!r} is not registered (it may have been removed as stale); "
            "register again with register_worker()"
        )


def record_cannot_run(
    engine: sa.Engine, worker_id: str, *, sweep_id: str, workload: str, reason: str
) -> bool:
    """Record that worker ``worker_id`` cannot build ``workload`` (and why) on its row and,
    while the sweep is runnable and no other worker holds it, on the sweep: what it waits
    for (:attr:`SweepRow.note`, cleared by the claim of a worker that can). True if the
    sweep's note was set."""
    with write(engine) as connection:
        me = connection.execute(sa.select(workers).where(workers.c.id == worker_id)).mappings()
        row = me.first()
        if row is None:
            raise WorkerNotFoundError(
                f"worker {worker_id!r} is not registered (it may have been removed as stale); "
                "register again with register_worker()"
            )
        known = {**(row["cannot_run"] or {}), workload: reason}
        connection.execute(
            sa.update(workers).where(workers.c.id == worker_id).values(cannot_run=known)
        )
        held = sa.select(workers.c.id).where(
            workers.c.current_sweep_id == sweep_id, workers.c.id != worker_id
        )
        note = (
            f"waiting for a worker that can run workload {workload!r}: worker {worker_id} on "
            f"{row['host']} cannot ({reason})"
        )
        noted = connection.execute(
            sa.update(sweeps)
            .where(
                sweeps.c.id == sweep_id,
                sweeps.c.status.in_(RUNNABLE_STATUSES),
                ~held.exists(),
            )
            .values(note=note)
        )
        return noted.rowcount == 1


def deregister_worker(engine: sa.Engine, worker_id: str) -> None:
    """Remove the worker's row; removing one already gone is not an error."""
    with write(engine) as connection:
        connection.execute(sa.delete(workers).where(workers.c.id == worker_id))


def list_workers(engine: sa.Engine) -> list[WorkerRow]:
    with read(engine) as connection:
        rows = connection.execute(sa.select(workers).order_by(workers.c.started_at, workers.c.id))
        return [WorkerRow.from_mapping(r) for r in rows.mappings()]


def stale_workers(engine: sa.Engine, *, grace_s: float) -> list[WorkerRow]:
    """Workers whose last heartbeat is older than ``grace_s`` seconds."""
    if grace_s <= 0:
        raise ValueError(f"grace_s must be > 0 seconds, but got {grace_s=}")
    cutoff = utcnow() - timedelta(seconds=grace_s)
    with read(engine) as connection:
        rows = connection.execute(
            sa.select(workers)
            .where(workers.c.last_heartbeat < cutoff)
            .order_by(workers.c.last_heartbeat)
        )
        return [WorkerRow.from_mapping(r) for r in rows.mappings()]


def is_live_worker(engine: sa.Engine, worker_id: str, *, grace_s: float) -> bool:
    """Whether worker ``worker_id`` is registered and beat within the last ``grace_s`` s."""
    cutoff = utcnow() - timedelta(seconds=grace_s)
    with read(engine) as connection:
        row = connection.execute(
            sa.select(workers.c.id).where(
                workers.c.id == worker_id, workers.c.last_heartbeat >= cutoff
            )
        ).first()
    return row is not None
