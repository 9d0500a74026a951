"""resident identity is (site, resident): declared absences keyed by both, family
accounts naming `site_id/resident_id`; the run lease (`platform_lease`)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 09:30:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _qualify_family_residents() -> None:
    """Bare resident ids of family accounts become `site_id/resident_id`, taking the
    site of the account's linked contact. An account with no link, or links at
    several sites, keeps its bare ids, which now grant nothing (fail closed) until an
    administrator re-creates it with qualified residents."""
    conn = op.get_bind()
    tables = sa.inspect(conn).get_table_names()
    if "gateway_user" not in tables or "gateway_family_contact" not in tables:
        return
    sites: dict[int, set[str]] = {}
    for user_id, site_id in conn.execute(
        sa.text("SELECT user_id, site_id FROM gateway_family_contact")
    ):
        sites.setdefault(int(user_id), set()).add(str(site_id))
    rows = conn.execute(
        sa.text("SELECT id, residents FROM gateway_user WHERE role = 'family'")
    ).all()
    for user_id, raw in rows:
        residents = json.loads(raw) if isinstance(raw, str) else list(raw or [])
        linked = sites.get(int(user_id), set())
        if len(linked) != 1 or all("/" in r for r in residents):
            continue
        site_id = next(iter(linked))
        qualified = sorted({r if "/" in r else f"{site_id}/{r}" for r in residents})
        conn.execute(
            sa.text("UPDATE gateway_user SET residents = :r WHERE id = :id"),
            {"r": json.dumps(qualified), "id": user_id},
        )


def _rebuild_planned_absence(key: list[str], site_index: bool) -> None:
    # A new primary key: copy into a fresh table (portable across SQLite and
    # PostgreSQL, whose primary-key constraints are named differently).
    op.create_table(
        "planned_absence_new",
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("resident_id", sa.String(length=64), nullable=False),
        sa.Column("until", sa.String(length=16), nullable=False),
        sa.Column("until_ts", sa.Float(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("declared_by", sa.String(length=128), nullable=False),
        sa.Column("declared_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(*key),
    )
    columns = "site_id, resident_id, until, until_ts, note, declared_by, declared_at"
    op.execute(f"INSERT INTO planned_absence_new ({columns}) SELECT {columns} FROM planned_absence")
    op.drop_table("planned_absence")
    op.rename_table("planned_absence_new", "planned_absence")
    op.create_index("ix_planned_absence_until_ts", "planned_absence", ["until_ts"], unique=False)
    if site_index:
        op.create_index("ix_planned_absence_site_id", "planned_absence", ["site_id"], unique=False)


def upgrade() -> None:
    _rebuild_planned_absence(["site_id", "resident_id"], site_index=False)
    _qualify_family_residents()
    op.create_table(
        "platform_lease",
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("renewed_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("role"),
    )


def downgrade() -> None:
    op.drop_table("platform_lease")
    _rebuild_planned_absence(["resident_id"], site_index=True)
