"""declared absences (planned_absence)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "planned_absence",
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("until", sa.String(length=16), nullable=False),
        sa.Column("until_ts", sa.Float(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("declared_by", sa.String(length=128), nullable=False),
        sa.Column("declared_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("resident_id"),
    )
    with op.batch_alter_table("planned_absence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_planned_absence_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_planned_absence_until_ts"), ["until_ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("planned_absence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_planned_absence_until_ts"))
        batch_op.drop_index(batch_op.f("ix_planned_absence_site_id"))
    op.drop_table("planned_absence")
