"""The family portal's API: my relative's state, today, alerts in plain words, preferences.

Safety alerts cannot be switched off, only re-routed: a preference without any
channel for safety alerts is refused.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import JSON, Integer
from sqlalchemy.orm import Mapped, mapped_column

from alerts.recipients import ContactKey, channel_kind
from eldercare.db import Base
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import Contact
from gateway.activity import ResidentState, TimelineItem
from gateway.auth import can_see_alert
from gateway.context import Auth, Ctx, GatewayContext, audit, require
from gateway.enrich import enrich
from gateway.family_link import linked_contacts
from gateway.ports import AlertEventOut, AlertOut, AlertQuery, NotificationOut
from gateway.routes_activity import resident_activity
from gateway.routes_alerts import name_notified
from gateway.routes_away import AwayOut, current_away
from gateway.routes_registry import ResidentOut, resident_out, resident_site
from gateway.users import Role

router = APIRouter(tags=["family"])
Family = require(Role.FAMILY, Role.ADMIN)

Channel = Literal["sms", "wechat_work", "email", "push", "voice"]
ALERT_DAYS = 30


def _channels(*names: Channel) -> list[Channel]:
    return list(names)


class FamilyPrefRow(Base):
    __tablename__ = "gateway_family_pref"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[dict[str, object]] = mapped_column(JSON)


class Preferences(BaseModel):
    safety_channels: list[Channel] = Field(
        default_factory=lambda: _channels("sms", "voice"),
        min_length=1,
        description="where safety alerts go; at least one: they cannot be switched off",
    )
    other_channels: list[Channel] = Field(
        default_factory=lambda: _channels("wechat_work"),
        description="other notifications; may be empty",
    )
    daily_summary: bool = True
    daily_summary_time: str = Field("20:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    nickname: str = Field("", max_length=32, description="how the portal names her: Mum, 妈妈")
    language: Literal["zh-CN", "en"] | None = None

    @field_validator("safety_channels", "other_channels")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))


class PreferencesOut(Preferences):
    available_channels: list[Channel] = Field(
        default_factory=list,
        description="channels the linked registry contact has an address for; safety "
        "alerts chosen for none of them still go to every address",
    )
    linked_contacts: list[str] = Field(
        default_factory=list,
        description="registry contacts (site_id/contact_id) these choices apply to; "
        "empty: the account is not linked and the choices do not yet reach notifications",
    )


class HandledAlert(BaseModel):
    alert: AlertOut
    history: list[AlertEventOut]
    notifications: list[NotificationOut] = Field(
        default_factory=list, description="messages to the family: channel and outcome"
    )


class FamilyView(BaseModel):
    resident: ResidentOut
    state: ResidentState | None = Field(description="None when activity is unavailable")
    today: list[TimelineItem]
    alerts: list[HandledAlert]
    away: AwayOut | None = Field(None, description="her declared absence, while current")


@router.get(
    "/api/family/residents",
    response_model=list[ResidentOut],
    summary="The relatives linked to my account",
)
async def my_residents(principal: Auth, ctx: Ctx, request: Request) -> list[ResidentOut]:
    index = await ctx.index()
    out = []
    for ref in sorted(principal.account.residents):
        site_id, _, rid = ref.partition("/")
        site = index.sites.get(site_id)
        resident = site.resident(rid) if site is not None else None
        if site is not None and resident is not None:
            out.append(resident_out(site, resident))
    for site_id in sorted({r.site_id for r in out}):
        ids: list[str | None] = [r.id for r in out if r.site_id == site_id]
        await audit(ctx, request, principal, "read_resident", site_id, ids)
    return out


@router.get(
    "/api/family/sites/{site_id}/residents/{resident_id}",
    response_model=FamilyView,
    summary="State, today's timeline and recent alerts of my relative",
)
@router.get(
    "/api/family/residents/{resident_id}",
    response_model=FamilyView,
    summary="The same, by a resident id unique among my relatives (else 409)",
)
async def family_view(
    resident_id: str, principal: Auth, ctx: Ctx, request: Request, site_id: str | None = None
) -> FamilyView:
    from fastapi import HTTPException

    index = await ctx.index()
    site, resident = resident_site(index, principal, resident_id, site_id)
    await audit(ctx, request, principal, "read_family_view", site.id, [resident.id])
    state, today = None, []
    try:
        act = await resident_activity(ctx, site, resident.id)
        state, today = act.state, act.today
    except HTTPException:
        pass  # InfluxDB down: the page still shows alerts and says activity is unavailable
    now = ctx.clock.now()
    alerts = await ctx.alert_service.list_alerts(
        AlertQuery(site_ids=frozenset({site.id}), since=now - ALERT_DAYS * 86400, limit=50)
    )
    handled = []
    for a in sorted(alerts, key=lambda a: -a.raised_at):
        if a.resident_id not in (None, resident.id):
            continue
        if not can_see_alert(principal.account, site, a.resident_id):
            continue
        history = await ctx.alert_service.alert_history(a.id)
        # The family sees what reached the family, not the duty centre's channels.
        notes = [
            name_notified(n, site)
            for n in await ctx.alert_service.alert_notifications(a.id)
            if n.role == "family"
        ]
        handled.append(HandledAlert(alert=enrich(a, index), history=history, notifications=notes))
    return FamilyView(
        resident=resident_out(site, resident),
        state=state,
        today=today,
        alerts=handled,
        away=current_away(site, index.planned_absences.get((site.id, resident.id)), now),
    )


def _linked(index: RegistryIndex, keys: list[ContactKey]) -> list[Contact]:
    out = []
    for site_id, contact_id in keys:
        site = index.sites.get(site_id)
        contact = next((c for c in site.contacts if c.id == contact_id), None) if site else None
        if contact is not None:
            out.append(contact)
    return out


async def _preferences_out(
    ctx: GatewayContext, user_id: int, saved: Preferences | None
) -> PreferencesOut:
    keys = await linked_contacts(ctx.sessions, user_id)
    contacts = _linked(await ctx.index(), keys)
    available = sorted({channel_kind(u) for c in contacts for u in c.apprise})
    if saved is None and contacts:
        # Nothing chosen yet: show what the registry does today, not a made-up default.
        first = contacts[0]
        saved = Preferences(
            safety_channels=available or Preferences().safety_channels,
            other_channels=available,
            daily_summary=first.daily_summary is not None,
            daily_summary_time=first.daily_summary or "20:00",
            language=first.language,
        )
    return PreferencesOut(
        **(saved or Preferences()).model_dump(),
        available_channels=available,
        linked_contacts=[f"{s}/{c}" for s, c in keys],
    )


@router.get(
    "/api/family/preferences",
    response_model=PreferencesOut,
    summary="My notification preferences and the channels my contact entry has",
)
async def get_preferences(principal: Auth, ctx: Ctx) -> PreferencesOut:
    async with ctx.sessions() as session:
        row = await session.get(FamilyPrefRow, principal.account.id)
    saved = Preferences.model_validate(row.data) if row else None
    return await _preferences_out(ctx, principal.account.id, saved)


@router.put(
    "/api/family/preferences",
    response_model=PreferencesOut,
    summary="Change my notification preferences (safety alerts can only be re-routed)",
)
async def put_preferences(body: Preferences, principal: Auth, ctx: Ctx) -> PreferencesOut:
    data = Preferences.model_validate(body.model_dump()).model_dump()
    async with ctx.sessions() as session:
        row = await session.get(FamilyPrefRow, principal.account.id)
        if row is None:
            session.add(FamilyPrefRow(user_id=principal.account.id, data=data))
        else:
            row.data = data
        await session.commit()
    return await _preferences_out(ctx, principal.account.id, Preferences.model_validate(data))


async def preferences_of(ctx: Ctx, user_id: int) -> Preferences:
    async with ctx.sessions() as session:
        row = await session.get(FamilyPrefRow, user_id)
    return Preferences.model_validate(row.data) if row else Preferences()


_ = Family
