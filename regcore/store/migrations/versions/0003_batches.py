"""batches: many sweeps submitted as one, with one deadline

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("deadline", sa.DateTime(), nullable=True),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_batches")),
    )
    with op.batch_alter_table("sweeps") as batch:  # batch: SQLite's ALTER TABLE is limited
        batch.add_column(sa.Column("batch_name", sa.String(length=100), nullable=True))
        batch.create_foreign_key(
            op.f("fk_sweeps_batch_name_batches"),
            "batches",
            ["batch_name"],
            ["name"],
            ondelete="CASCADE",
        )
        batch.create_index(op.f("ix_sweeps_batch_name"), ["batch_name"])


def downgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_index(op.f("ix_sweeps_batch_name"))
        batch.drop_constraint(op.f("fk_sweeps_batch_name_batches"), type_="foreignkey")
        batch.drop_column("batch_name")
    op.drop_table("batches")
