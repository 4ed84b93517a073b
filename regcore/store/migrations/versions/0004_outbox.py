"""outbox: webhook events written with the status change that ends a sweep

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

A sweep's (and its batch's) webhook event is a row here, inserted in the same transaction
that ends the sweep, so a process killed right after that commit loses no event: any live
worker or the service delivers it later (at least once, keyed by ``key``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("sweep_id", sa.String(length=32), nullable=True),
        sa.Column("batch_name", sa.String(length=100), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('sweep.finished', 'batch.finished')", name=op.f("ck_outbox_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_outbox_key")),
    )
    # Deliverers look for due events by this column; delivered ones have it NULL.
    op.create_index(op.f("ix_outbox_next_attempt_at"), "outbox", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_next_attempt_at"), table_name="outbox")
    op.drop_table("outbox")
