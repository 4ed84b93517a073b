"""workers: how many claims each made and how long they took

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Workers run in other processes (and machines) than the service, so their claim latency
reaches ``GET /metrics`` through the database: each worker's heartbeat writes its totals.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:  # batch: SQLite's ALTER TABLE is limited
        batch.add_column(sa.Column("claims", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("claim_seconds", sa.Float(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("claim_seconds")
        batch.drop_column("claims")
