"""field service: responders' notify URLs, order messages to responders, device-fault episodes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("field_responder", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify", sa.JSON(), nullable=True))

    op.create_table(
        "field_responder_message",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("responder", sa.String(length=64), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("done", sa.JSON(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id", "attempt"),
    )
    with op.batch_alter_table("field_responder_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_field_responder_message_delivered_at"), ["delivered_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_field_responder_message_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "field_device_watch",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("first_seen", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("site_id", "device_id"),
    )

    op.create_table(
        "field_device_fault",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("raise_handed", sa.Boolean(), nullable=False),
        sa.Column("clear_handed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "device_id", "reason", "since"),
    )
    with op.batch_alter_table("field_device_fault", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_field_device_fault_ended_at"), ["ended_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_field_device_fault_site_id"), ["site_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("field_device_fault", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_field_device_fault_site_id"))
        batch_op.drop_index(batch_op.f("ix_field_device_fault_ended_at"))
    op.drop_table("field_device_fault")
    op.drop_table("field_device_watch")
    with op.batch_alter_table("field_responder_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_field_responder_message_order_id"))
        batch_op.drop_index(batch_op.f("ix_field_responder_message_delivered_at"))
    op.drop_table("field_responder_message")
    with op.batch_alter_table("field_responder", schema=None) as batch_op:
        batch_op.drop_column("notify")
