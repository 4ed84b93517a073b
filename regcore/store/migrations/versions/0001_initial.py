"""sweeps and workers

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Times are naive UTC (``regcore.store._tables.UTCDateTime`` converts at the edges); a
migration names plain SQL types only, so it keeps meaning the same when the models change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SWEEP_STATUSES = "'queued', 'running', 'completed', 'cancelled', 'failed', 'deadline_reached'"


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("study_name", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("deadline", sa.DateTime(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(f"status IN ({_SWEEP_STATUSES})", name=op.f("ck_sweeps_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sweeps")),
        sa.UniqueConstraint("name", name=op.f("uq_sweeps_name")),
    )
    op.create_index("ix_sweeps_claim", "sweeps", ["status", sa.text("priority DESC"), "created_at"])
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_heartbeat", sa.DateTime(), nullable=False),
        sa.Column("current_sweep_id", sa.String(length=32), nullable=True),
        sa.Column("current_trial_number", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.CheckConstraint(
            "status IN ('idle', 'busy', 'stopping')", name=op.f("ck_workers_status")
        ),
        sa.ForeignKeyConstraint(
            ["current_sweep_id"],
            ["sweeps.id"],
            name=op.f("fk_workers_current_sweep_id_sweeps"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    op.create_index(op.f("ix_workers_last_heartbeat"), "workers", ["last_heartbeat"])


def downgrade() -> None:
    op.drop_index(op.f("ix_workers_last_heartbeat"), table_name="workers")
    op.drop_table("workers")
    op.drop_index("ix_sweeps_claim", table_name="sweeps")
    op.drop_table("sweeps")
