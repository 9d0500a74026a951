"""Responders for the field-service tests, on top of the gateway test registry
(tests/helpers/gateway.py): accounts of role responder plus their records."""

from __future__ import annotations

from field_service.responders import ResponderKind, upsert_responder
from gateway.users import Role, Sessions, create_user
from tests.helpers.gateway import BINCHENG, PASSWORD, ZHANHUA

HUANGHE = f"{BINCHENG}/市中街道/黄河社区"

# username, display name, kind, area, on duty
RESPONDERS = [
    ("wang-grid", "王强", ResponderKind.GRID_WORKER, HUANGHE, True),
    ("li-volunteer", "李芳", ResponderKind.VOLUNTEER, BINCHENG, False),
    ("chen-nurse", "陈静", ResponderKind.NURSE, f"{BINCHENG}/颐养院", True),
    ("liu-zhanhua", "刘伟", ResponderKind.COMMUNITY_WORKER, ZHANHUA, True),
]


async def add_responders(sessions: Sessions, now: float) -> None:
    for username, name, kind, area, on_duty in RESPONDERS:
        await create_user(
            sessions, username=username, role=Role.RESPONDER, password=PASSWORD, now=now,
            scope=area, display_name=name,
        )  # fmt: skip
        await upsert_responder(
            sessions, username=username, name=name, kind=kind, area=area,
            phone="1350000" + str(len(name)).zfill(4), on_duty=on_duty, now=now,
        )  # fmt: skip
