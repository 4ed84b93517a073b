"""sweeps.note and workers.cannot_run: why a sweep waits, and what a worker cannot run

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

A worker that cannot build a sweep's workload (its plug-in missing, or an older copy) leaves
the sweep to workers that can, and says so: what it cannot run and why on its own row, and
on the sweep, while nobody runs it, what it waits for.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:  # batch: SQLite's ALTER TABLE is limited
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("cannot_run", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("cannot_run")
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_column("note")
