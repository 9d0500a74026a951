"""notification outcomes: channel kind, outcome, provider reference, digest, template variables

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 09:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel_kind", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("provider_ref", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("digest_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("params", sa.Text(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_notification_log_provider_ref"), ["provider_ref"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_log_provider_ref"))
        batch_op.drop_column("params")
        batch_op.drop_column("digest_id")
        batch_op.drop_column("provider_ref")
        batch_op.drop_column("outcome")
        batch_op.drop_column("channel_kind")
