"""A resident's recent activity and readings (InfluxDB), and device health."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import inspect, text

from eldercare.domain import AlertKind
from eldercare.logs import get_logger
from gateway import activity
from gateway.context import Auth, Ctx, GatewayContext, Staff, audit
from gateway.ports import AlertQuery
from gateway.routes_alerts import scope_query
from gateway.routes_registry import resident_site

log = get_logger(__name__)
UNREGISTERED_TABLE = "ingest_unregistered_device"
UNREGISTERED_LIMIT = 500
router = APIRouter(tags=["activity"])

Measurement = Literal[
    "motion",
    "contact",
    "occupancy",
    "presence",
    "fall",
    "sos",
    "battery",
    "tamper",
    "vitals",
    "availability",
    "flush",
    "power",
]


class ResidentActivity(BaseModel):
    resident_id: str
    state: activity.ResidentState
    strip: activity.ActivityStrip
    today: list[activity.TimelineItem]


class ReadingRow(BaseModel):
    ts: float
    measurement: str
    device: str | None = None
    room: str | None = None
    fields: dict[str, Any]


class DeviceProblem(BaseModel):
    site_id: str
    site_name: str
    device_id: str | None = None
    kind: str = Field(description="device_offline, low_battery, site_offline or tamper")
    since: float
    room_id: str | None = None
    room_name: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class UnregisteredDevice(BaseModel):
    key: str
    first_seen: float | None = None
    last_seen: float | None = None
    messages: int | None = None
    sample: str | None = None


class QuarantinedOut(BaseModel):
    received_at: float
    cause: str
    detail: str
    topic: str
    payload: str = Field(description="UTF-8 text, or base64 of binary payloads")


class IntakeCounts(BaseModel):
    """What ingest could not place, as numbers only: every operator sees them (to tell
    an admin); the devices and messages themselves are for admins."""

    unregistered_devices: int | None = Field(
        None, description="unknown devices sending data; None when ingest keeps no table"
    )
    quarantined_messages: int = Field(0, description="refused messages held in quarantine")
    newest_quarantined_at: float | None = None


class DeviceHealth(BaseModel):
    intake: IntakeCounts = Field(default_factory=IntakeCounts)
    problems: list[DeviceProblem]
    unregistered: list[UnregisteredDevice]
    unregistered_available: bool = Field(description="False when ingest keeps no such table")
    quarantined: list[QuarantinedOut] = Field(
        default_factory=list, description="newest messages ingest refused (admins only)"
    )


def _influx(ctx: GatewayContext) -> Any:
    if ctx.influx is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "no InfluxDB configured")
    return ctx.influx


async def _events(
    ctx: GatewayContext, site_id: str, since: float, until: float
) -> list[activity.ActivityEvent]:
    from eldercare.influx import InfluxError

    try:
        return await activity.load_events(
            _influx(ctx), ctx.settings.influx_db, site_id, since, until
        )
    except InfluxError as exc:
        log.warning("activity query failed", extra={"site": site_id, "error": str(exc)})
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "InfluxDB unavailable") from exc


async def resident_activity(ctx: GatewayContext, site: Any, resident_id: str) -> ResidentActivity:
    now = ctx.clock.now()
    start_12h, _ = activity.twelve_hours(now)
    start_day = activity.day_start(now, site.timezone)
    since = min(start_12h, start_day)
    events = await _events(ctx, site.id, since, now + 1)
    todays = [e for e in events if e.ts >= start_day]
    return ResidentActivity(
        resident_id=resident_id,
        state=activity.resident_state(site, events, now),
        strip=activity.activity_strip(site, events, start_12h, now),
        today=activity.day_timeline(site, todays, now),
    )


@router.get(
    "/api/sites/{site_id}/residents/{resident_id}/activity",
    response_model=ResidentActivity,
    summary="State, last 12 hours per room, today's timeline",
)
@router.get(
    "/api/residents/{resident_id}/activity",
    response_model=ResidentActivity,
    summary="The same, by a resident id unique among those I may see (else 409)",
)
async def get_activity(
    resident_id: str, principal: Auth, ctx: Ctx, request: Request, site_id: str | None = None
) -> ResidentActivity:
    site, resident = resident_site(await ctx.index(), principal, resident_id, site_id)
    await audit(ctx, request, principal, "read_activity", site.id, [resident.id])
    return await resident_activity(ctx, site, resident.id)


@router.get(
    "/api/sites/{site_id}/residents/{resident_id}/readings",
    response_model=list[ReadingRow],
    summary="Raw readings of a resident's site (newest last)",
)
@router.get(
    "/api/residents/{resident_id}/readings",
    response_model=list[ReadingRow],
    summary="The same, by a resident id unique among those I may see (else 409)",
)
async def get_readings(
    resident_id: str,
    principal: Auth,
    ctx: Ctx,
    request: Request,
    site_id: str | None = None,
    measurement: Annotated[list[Measurement] | None, Query()] = None,
    hours: Annotated[float, Query(gt=0, le=168)] = 12,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[ReadingRow]:
    from eldercare.influx import InfluxError, quote_ident, quote_string

    site, resident = resident_site(await ctx.index(), principal, resident_id, site_id)
    await audit(ctx, request, principal, "read_readings", site.id, [resident.id])
    now = ctx.clock.now()
    out: list[ReadingRow] = []
    for m in measurement or ["motion", "contact", "occupancy", "presence"]:
        q = (
            f'SELECT * FROM {quote_ident(m)} WHERE "site" = {quote_string(site.id)} '
            f"AND time >= {int((now - hours * 3600) * 1e9)} ORDER BY time DESC LIMIT {limit}"
        )
        try:
            rows = await _influx(ctx).query(q, ctx.settings.influx_db)
        except InfluxError as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, "InfluxDB unavailable"
            ) from exc
        for row in rows:
            fields = {
                k: v
                for k, v in row.items()
                if k not in ("time", "site", "device", "room", "resident", "source")
                and not k.startswith("_")
                and v is not None
            }
            out.append(
                ReadingRow(
                    ts=activity._ts(row["time"]),
                    measurement=m,
                    device=row.get("device"),
                    room=row.get("room"),
                    fields=fields,
                )
            )
    out.sort(key=lambda r: r.ts)
    return out[-limit:]


async def unregistered_devices(ctx: GatewayContext) -> tuple[bool, list[UnregisteredDevice]]:
    """Ingest's table of unknown devices that are sending data, if it keeps one."""
    # Ingest's table is read by name (the gateway does not import ingest): a deployment
    # running ingest elsewhere shares the relational store, not the code.
    async with ctx.sessions() as session:
        conn = await session.connection()
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        if UNREGISTERED_TABLE not in names:
            return False, []
        result = await session.execute(
            text(
                f'SELECT * FROM "{UNREGISTERED_TABLE}" ORDER BY last_seen DESC '
                f"LIMIT {UNREGISTERED_LIMIT}"
            )
        )
        rows = [dict(r._mapping) for r in result]
    out = []
    for r in rows:
        key = r.get("identity") or r.get("topic")
        out.append(
            UnregisteredDevice(
                key=str(key),
                first_seen=_num(r.get("first_seen")),
                last_seen=_num(r.get("last_seen")),
                messages=int(r["count"]) if isinstance(r.get("count"), int) else None,
                sample=str(r.get("sample_payload") or "")[:500] or None,
            )
        )
    return True, out


async def unregistered_count(ctx: GatewayContext) -> int | None:
    async with ctx.sessions() as session:
        conn = await session.connection()
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        if UNREGISTERED_TABLE not in names:
            return None
        count = await session.scalar(text(f'SELECT COUNT(*) FROM "{UNREGISTERED_TABLE}"'))
        return int(count or 0)


def quarantine_counts(run_dir: Path) -> tuple[int, float | None]:
    """How many messages the quarantine holds (one per line; the store is bounded, so
    counting newlines stays cheap) and when the newest arrived."""
    files = sorted((run_dir / "quarantine").glob("quarantine-*.jsonl"))
    held = 0
    for path in files:
        try:
            held += path.read_bytes().count(b"\n")
        except OSError:
            continue
    newest = recent_quarantine(run_dir, limit=1)
    return held, (newest[0].received_at if newest else None)


QUARANTINE_SHOWN = 50


def recent_quarantine(run_dir: Path, limit: int = QUARANTINE_SHOWN) -> list[QuarantinedOut]:
    """The newest refused messages, from ingest's JSON-lines files
    (`<run_dir>/quarantine/quarantine-<n>.jsonl`, documented in ingest/quarantine.py)."""
    files = sorted((run_dir / "quarantine").glob("quarantine-*.jsonl"), reverse=True)
    out: list[QuarantinedOut] = []
    for path in files:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        for line in reversed(lines):
            try:
                doc = json.loads(line)
                out.append(
                    QuarantinedOut(
                        received_at=float(doc.get("received_at", 0.0)),
                        cause=str(doc["cause"]),
                        detail=str(doc.get("detail", ""))[:300],
                        topic=str(doc.get("topic", ""))[:300],
                        payload=str(doc.get("payload", doc.get("payload_base64", "")))[:500],
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a crash mid-write
            if len(out) >= limit:
                return out
    return out


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


@router.get(
    "/api/device-health",
    response_model=DeviceHealth,
    summary="Offline devices, low batteries, unknown devices sending data",
    tags=["devices"],
)
async def device_health(principal: Staff, ctx: Ctx) -> DeviceHealth:
    index = await ctx.index()
    sites, _ = scope_query(index, principal)
    kinds = frozenset(
        {AlertKind.DEVICE_OFFLINE, AlertKind.LOW_BATTERY, AlertKind.SITE_OFFLINE, AlertKind.TAMPER}
    )
    alerts = (
        []
        if sites == frozenset()
        else await ctx.alert_service.list_alerts(
            AlertQuery(
                site_ids=sites,
                kinds=frozenset(k.value for k in kinds),
                handling=frozenset({"open", "acknowledged"}),
                limit=10_000,
            )
        )
    )
    problems = []
    for a in alerts:
        if a.condition != "active":
            continue
        site = index.sites.get(a.site_id)
        room = site.room(a.room_id) if site else None
        problems.append(
            DeviceProblem(
                site_id=a.site_id,
                site_name=site.name if site else a.site_id,
                device_id=a.device_id,
                kind=a.kind,
                since=a.raised_at,
                room_id=a.room_id,
                room_name=(room.name or room.id) if room else None,
                details=a.details,
            )
        )
    problems.sort(key=lambda p: (p.kind != "site_offline", p.since))
    # Unknown devices are not in anyone's scope yet; only admins register them.
    quarantined: list[QuarantinedOut] = []
    if principal.role.value == "admin":
        available, unknown = await unregistered_devices(ctx)
        quarantined = recent_quarantine(ctx.settings.run_dir)
    else:
        available, unknown = False, []
    held, newest_at = quarantine_counts(ctx.settings.run_dir)
    intake = IntakeCounts(
        unregistered_devices=await unregistered_count(ctx),
        quarantined_messages=held,
        newest_quarantined_at=newest_at,
    )
    return DeviceHealth(
        intake=intake,
        problems=problems,
        unregistered=unknown,
        unregistered_available=available,
        quarantined=quarantined,
    )


class BedState(BaseModel):
    bed_id: str | None = Field(None, description="None for a room without beds")
    label: str
    room_id: str | None = None
    room_name: str | None = None
    floor: str | None = None
    resident_id: str | None = None
    resident_name: str | None = None
    state: str = Field(description="occupied, empty, out_of_bed, unknown")
    since: float | None = None
    minutes_out: int | None = Field(None, description="minutes out of bed at night")
    alerting: bool = False
    alert_kinds: list[str] = Field(default_factory=list)


class FloorView(BaseModel):
    site_id: str
    site_name: str
    beds: list[BedState]


async def _last_occupancy(
    ctx: GatewayContext, site_id: str, now: float
) -> dict[str, tuple[float, bool]]:
    from eldercare.influx import InfluxError, quote_string

    if ctx.influx is None:
        return {}
    q = (
        f'SELECT last("occupied") AS "occupied" FROM "occupancy" WHERE "site" = '
        f"{quote_string(site_id)} AND time >= {int((now - 2 * 86400) * 1e9)} "
        f'AND time <= {int(now * 1e9)} GROUP BY "device"'
    )
    try:
        rows = await ctx.influx.query(q, ctx.settings.influx_db)
    except InfluxError:
        return {}
    out = {}
    for row in rows:
        device = (row.get("_tags") or {}).get("device") or row.get("device")
        if device and row.get("occupied") is not None:
            out[device] = (activity._ts(row["time"]), activity._truthy(row["occupied"]))
    return out


@router.get(
    "/api/sites/{site_id}/floor",
    response_model=FloorView,
    tags=["registry"],
    summary="Institution floor view: beds occupied, empty, out of bed at night, alerting",
)
async def floor_view(site_id: str, principal: Staff, ctx: Ctx) -> FloorView:
    from zoneinfo import ZoneInfo

    from gateway.context import visible_site

    index = await ctx.index()
    site = visible_site(index, principal, site_id)
    now = ctx.clock.now()
    alerts = await ctx.alert_service.list_alerts(
        AlertQuery(
            site_ids=frozenset({site.id}), handling=frozenset({"open", "acknowledged"}), limit=5000
        )
    )
    occupancy = await _last_occupancy(ctx, site.id, now)
    zone = ZoneInfo(site.timezone)
    bed_device = {d.bed: d.id for d in site.devices if d.kind == "bed" and d.bed}
    for d in site.devices:
        if d.kind == "bed" and not d.bed and d.resident:
            r = site.resident(d.resident)
            if r is not None and r.bed:
                bed_device.setdefault(r.bed, d.id)
    rooms = {r.id: r for r in site.rooms}
    out: list[BedState] = []
    for bed in site.beds:
        resident = next((r for r in site.residents if r.bed == bed.id), None)
        room = rooms.get(bed.room)
        kinds = sorted(
            {a.kind for a in alerts if resident is not None and a.resident_id == resident.id}
        )
        last = occupancy.get(bed_device.get(bed.id, ""))
        state, since, minutes = "unknown", None, None
        if last is not None:
            since = last[0]
            state = "occupied" if last[1] else "empty"
            night = resident is not None and activity.is_night(
                now, zone, activity.night_window(site, "bed_exit_no_return", resident.id)
            )
            if not last[1] and night and resident is not None:
                state, minutes = "out_of_bed", int((now - last[0]) // 60)
        out.append(
            BedState(
                bed_id=bed.id,
                label=bed.name or bed.id,
                room_id=bed.room,
                room_name=(room.name or room.id) if room else None,
                floor=room.floor if room else None,
                resident_id=resident.id if resident else None,
                resident_name=resident.name if resident else None,
                state=state,
                since=since,
                minutes_out=minutes,
                alerting=bool(kinds),
                alert_kinds=kinds,
            )
        )
    if not site.beds:  # a home: one tile per room, alerting if an alert points at it
        for room in site.rooms:
            kinds = sorted({a.kind for a in alerts if a.room_id == room.id})
            out.append(
                BedState(
                    label=room.name or room.id,
                    room_id=room.id,
                    room_name=room.name or room.id,
                    floor=room.floor,
                    state="unknown",
                    alerting=bool(kinds),
                    alert_kinds=kinds,
                )
            )
    return FloorView(site_id=site.id, site_name=site.name, beds=out)
