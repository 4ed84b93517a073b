"""regsweep's own tables, beside Optuna's in the same database.

Declared once here; the Alembic migrations in ``migrations/versions`` must create exactly
this schema (a test compares them). Times are stored as naive UTC on every engine, as
Optuna 5 stores its own, and handed out timezone-aware, so nothing depends on the server's or
the process's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SWEEP_STATUSES = ("queued", "running", "completed", "cancelled", "failed", "deadline_reached")
RUNNABLE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("completed", "cancelled", "failed", "deadline_reached")
WORKER_STATUSES = ("idle", "busy", "stopping")
OUTBOX_KINDS = ("sweep.finished", "batch.finished")

# Names for every constraint and index, so migrations can refer to them (and SQLite batch
# migrations can rebuild tables) the same way on every engine.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as naive UTC.

    A naive datetime is refused: which zone it meant cannot be known.
    """

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(
                f"give times a time zone (datetime.now(UTC), or an ISO-8601 stamp with an "
                f"offset), but got the naive {value.isoformat()}"
            )
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class SweepTable(Base):
    """One submitted sweep: its spec, where it is in its life, and who asked for it."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    study_name: Mapped[str] = mapped_column(sa.String(512))
    status: Mapped[str] = mapped_column(sa.String(20))
    priority: Mapped[int] = mapped_column(sa.Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    owner: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean)
    error: Mapped[str | None] = mapped_column(sa.Text)
    # Why it waits while no worker runs it (a worker that cannot build its workload says so).
    note: Mapped[str | None] = mapped_column(sa.Text)
    batch_name: Mapped[str | None] = mapped_column(
        sa.String(100), sa.ForeignKey("batches.name", ondelete="CASCADE"), index=True
    )

    __table_args__ = (sa.CheckConstraint(sa.column("status").in_(SWEEP_STATUSES), name="status"),)


class BatchTable(Base):
    """Sweeps submitted together under one name and deadline (``regsweep batch submit``)."""

    __tablename__ = "batches"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    owner: Mapped[str | None] = mapped_column(sa.String(200))
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_url: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set once, by the transaction that ends its last sweep: it writes the batch's event.
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WorkerTable(Base):
    """One live worker process and what it is doing, refreshed by its heartbeat."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int] = mapped_column(sa.Integer)
    device: Mapped[str] = mapped_column(sa.String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_heartbeat: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    current_sweep_id: Mapped[str | None] = mapped_column(
        sa.String(32), sa.ForeignKey("sweeps.id", ondelete="SET NULL")
    )
    current_trial_number: Mapped[int | None] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(20))
    # Totals since the worker started: trials claimed, and the seconds the claims took.
    claims: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)
    claim_seconds: Mapped[float] = mapped_column(sa.Float, server_default="0", default=0.0)
    # Workloads it cannot build (plug-in missing, another version): name → why.
    cannot_run: Mapped[dict[str, str] | None] = mapped_column(sa.JSON)

    __table_args__ = (sa.CheckConstraint(sa.column("status").in_(WORKER_STATUSES), name="status"),)


class OutboxTable(Base):
    """A webhook event to deliver, written in the transaction that ended its sweep (or batch).

    ``payload`` holds the facts that transaction knew; ``body`` the exact JSON sent, fixed at
    the first attempt so every retry of one ``key`` sends the same bytes. ``next_attempt_at``
    is when a deliverer may take it next (a claim pushes it ahead as a lease); NULL once it
    was delivered or given up. ``url`` may carry a secret: never log it whole.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(sa.String(32), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    # No foreign keys: the event outlives a sweep or batch deleted before it went out.
    sweep_id: Mapped[str | None] = mapped_column(sa.String(32))
    batch_name: Mapped[str | None] = mapped_column(sa.String(100))
    url: Mapped[str] = mapped_column(sa.Text)
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    body: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(sa.Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (sa.CheckConstraint(sa.column("kind").in_(OUTBOX_KINDS), name="kind"),)


# The claim reads runnable sweeps by priority (highest first), then oldest first.
sa.Index("ix_sweeps_claim", SweepTable.status, SweepTable.priority.desc(), SweepTable.created_at)

sweeps = cast(sa.Table, SweepTable.__table__)
workers = cast(sa.Table, WorkerTable.__table__)
batches = cast(sa.Table, BatchTable.__table__)
outbox = cast(sa.Table, OutboxTable.__table__)
