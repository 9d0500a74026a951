"""A resident's recent activity, read from InfluxDB and told as a story.

Reading (`load_events`) is a handful of InfluxQL queries over the measurements of
docs/influx-schema.md; everything after that is pure functions over
`ActivityEvent`s: the 12-hour activity strip per room, the day's timeline (got
up, kitchen activity, outings, night bathroom visits) and the one-sentence state
the family portal shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from detectors.catalogue import site_context
from detectors.movement import MOTION_REPEAT_S
from detectors.settings import DetectorSettingsError, NightWindowSettings, minutes_of_day
from eldercare.domain import RoomKind
from eldercare.registry_model import Site
from gateway.ports import InfluxQuery

# measurement -> (field, value meaning "activity seen")
ACTIVITY_MEASUREMENTS: dict[str, str] = {
    "motion": "motion",
    "presence": "present",
    "contact": "open",
    "occupancy": "occupied",
}
OUTING_MIN_S = 10 * 60  # no indoor movement this long after the outer door: gone out
CLUSTER_GAP_S = 10 * 60
LEAVING_GRACE_S = 60.0  # movement right after opening the door is the leaving itself
MEAL_GAP_S = 30 * 60  # kitchen movement with pauses shorter than this is one meal


@dataclass(frozen=True, slots=True)
class ActivityEvent:
    ts: float
    measurement: str  # motion, presence, contact, occupancy
    value: bool
    room_id: str | None
    device_id: str | None


class RoomActivity(BaseModel):
    room_id: str
    room_name: str
    room_kind: str
    last_active_at: float | None = Field(description="last movement seen, epoch seconds")
    buckets: list[int] = Field(description="events per bucket, oldest first")


class ActivityStrip(BaseModel):
    since: float
    until: float
    bucket_seconds: int
    rooms: list[RoomActivity]


class TimelineItem(BaseModel):
    at: float
    until: float | None = None
    kind: str = Field(description="got_up, kitchen, went_out, came_back, night_bathroom, in_bed")
    room_id: str | None = None
    room_name: str | None = None
    room_kind: str | None = None


class ResidentState(BaseModel):
    state: str = Field(description="at_home, in_bed, out, unknown")
    since: float | None = None
    last_active_at: float | None = None
    last_active_room: str | None = None
    last_active_room_name: str | None = None
    last_active_room_kind: str | None = None


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ts(value: Any) -> float:
    if isinstance(value, int | float):
        # Epoch values arrive in seconds from the client; nanoseconds if raw.
        return float(value) / 1e9 if value > 1e14 else float(value)
    text = str(value).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


async def load_events(
    influx: InfluxQuery, db: str | None, site_id: str, since: float, until: float
) -> list[ActivityEvent]:
    """Every motion/presence/door/bed reading of a site in [since, until), oldest first."""
    events: list[ActivityEvent] = []
    for measurement, field_name in ACTIVITY_MEASUREMENTS.items():
        q = (
            f'SELECT "{field_name}", "room", "device" FROM "{measurement}" '
            f'WHERE "site" = {_quote(site_id)} '
            f"AND time >= {int(since * 1e9)} AND time < {int(until * 1e9)}"
        )
        rows: Sequence[Mapping[str, Any]] = await influx.query(q, db)
        for row in rows:
            if row.get(field_name) is None:
                continue
            events.append(
                ActivityEvent(
                    ts=_ts(row["time"]),
                    measurement=measurement,
                    value=_truthy(row[field_name]),
                    room_id=row.get("room") or None,
                    device_id=row.get("device") or None,
                )
            )
    events.sort(key=lambda e: e.ts)
    return without_motion_repeats(events)


def without_motion_repeats(events: Sequence[ActivityEvent]) -> list[ActivityEvent]:
    """Drop a `motion: true` that repeats the last one counted from its device within a
    PIR's blind time with no `false` between: zigbee2mqtt's cached state sent again with a
    battery or link report, not a person moving (the detectors' rule, `detectors.movement`;
    without it a repeat just after the front door closed reads as "at home")."""
    out: list[ActivityEvent] = []
    on_since: dict[str | None, float] = {}
    for e in events:
        if e.measurement == "motion":
            if not e.value:
                on_since.pop(e.device_id, None)
            else:
                last = on_since.get(e.device_id)
                if last is not None and e.ts - last < MOTION_REPEAT_S:
                    continue
                on_since[e.device_id] = e.ts
        out.append(e)
    return out


def _is_movement(e: ActivityEvent) -> bool:
    return e.value and e.measurement in ("motion", "presence")


def _outer_door_devices(site: Site) -> set[str]:
    return {d.id for d in site.devices if d.outer_door}


def _bed_devices(site: Site) -> set[str]:
    return {d.id for d in site.devices if d.kind == "bed"}


def activity_strip(
    site: Site, events: Sequence[ActivityEvent], since: float, until: float, bucket_s: int = 1800
) -> ActivityStrip:
    n = max(1, int((until - since + bucket_s - 1) // bucket_s))
    rooms = {
        r.id: RoomActivity(
            room_id=r.id,
            room_name=r.name or r.id,
            room_kind=r.kind,
            last_active_at=None,
            buckets=[0] * n,
        )
        for r in site.rooms
    }
    for e in events:
        room = rooms.get(e.room_id or "")
        if room is None or not e.value or not since <= e.ts < until:
            continue
        room.buckets[int((e.ts - since) // bucket_s)] += 1
        room.last_active_at = max(room.last_active_at or 0.0, e.ts)
    return ActivityStrip(
        since=since, until=until, bucket_seconds=bucket_s, rooms=list(rooms.values())
    )


def _local_hour(ts: float, zone: ZoneInfo) -> int:
    return datetime.fromtimestamp(ts, zone).hour


NightWindow = tuple[str, str]  # local "HH:MM" start and end; may cross midnight


def night_window(site: Site, rule: str, resident_id: str | None = None) -> NightWindow:
    """`rule`'s night window at this site (for this resident), the registry's overrides
    laid over the defaults: the family and the floor view call "night" what the
    detectors do. Overrides the detectors refuse (they keep their previous set) give
    the defaults here."""
    try:
        settings = site_context(site).settings(rule, NightWindowSettings, resident_id)
    except DetectorSettingsError:
        settings = NightWindowSettings()
    return settings.night_start, settings.night_end


def is_night(ts: float, zone: ZoneInfo, window: NightWindow) -> bool:
    local = datetime.fromtimestamp(ts, zone)
    minute = local.hour * 60 + local.minute
    start, end = minutes_of_day(window[0]), minutes_of_day(window[1])
    if start == end:
        return True
    return start <= minute < end if start < end else minute >= start or minute < end


def day_start(ts: float, timezone: str) -> float:
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(ts, zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _clusters(times: list[float], gap: float) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for t in sorted(times):
        if out and t - out[-1][1] <= gap:
            out[-1] = (out[-1][0], t)
        else:
            out.append((t, t))
    return out


def day_timeline(site: Site, events: Sequence[ActivityEvent], now: float) -> list[TimelineItem]:
    """The day told in the family's terms, from one day's events (oldest first)."""
    zone = ZoneInfo(site.timezone)
    night = night_window(site, "bathroom_too_long")
    room_kind = {r.id: r.kind for r in site.rooms}
    room_name = {r.id: r.name or r.id for r in site.rooms}
    beds = _bed_devices(site)
    doors = _outer_door_devices(site)
    items: list[TimelineItem] = []

    # Got up: the first time the bed empties after 05:00, else first movement after 05:00.
    for e in events:
        if _local_hour(e.ts, zone) < 5:
            continue
        left_bed = e.measurement == "occupancy" and e.device_id in beds and not e.value
        if left_bed or (not beds and _is_movement(e)):
            items.append(
                TimelineItem(
                    at=e.ts,
                    kind="got_up",
                    room_id=e.room_id,
                    room_name=room_name.get(e.room_id or ""),
                    room_kind=room_kind.get(e.room_id or ""),
                )
            )
            break

    kitchen = [
        e.ts
        for e in events
        if _is_movement(e) and room_kind.get(e.room_id or "") == RoomKind.KITCHEN
    ]
    kitchen_id = next((r.id for r in site.rooms if r.kind == RoomKind.KITCHEN), None)
    for start, end in _clusters(kitchen, MEAL_GAP_S):
        items.append(
            TimelineItem(
                at=start,
                until=end,
                kind="kitchen",
                room_id=kitchen_id,
                room_name=room_name.get(kitchen_id or ""),
                room_kind=RoomKind.KITCHEN,
            )
        )

    bathroom_rooms = {
        rid for rid, k in room_kind.items() if k in (RoomKind.BATHROOM, RoomKind.TOILET)
    }
    night_bath = [
        e
        for e in events
        if _is_movement(e) and e.room_id in bathroom_rooms and is_night(e.ts, zone, night)
    ]
    for start, end in _clusters([e.ts for e in night_bath], CLUSTER_GAP_S):
        rid = next(e.room_id for e in night_bath if e.ts == start)
        items.append(
            TimelineItem(
                at=start,
                until=end,
                kind="night_bathroom",
                room_id=rid,
                room_name=room_name.get(rid or ""),
                room_kind=room_kind.get(rid or ""),
            )
        )

    items.extend(_outings(events, doors, now))
    items.sort(key=lambda i: i.at)
    return items


def _outings(events: Sequence[ActivityEvent], doors: set[str], now: float) -> list[TimelineItem]:
    """Outer door opened, then no indoor movement for a while: out from that opening
    until the door opens again or movement is seen (still out if neither yet)."""
    out: list[TimelineItem] = []
    opened: float | None = None  # the door opened and nobody has moved inside since
    for e in events:
        is_door_open = e.measurement == "contact" and e.device_id in doors and e.value
        if opened is None:
            if is_door_open:
                opened = e.ts
            continue
        if _is_movement(e) and e.ts - opened <= LEAVING_GRACE_S:
            continue  # walking out past the hallway sensor
        if _is_movement(e) or is_door_open:
            if e.ts - opened >= OUTING_MIN_S:
                out.append(TimelineItem(at=opened, until=e.ts, kind="went_out"))
                opened = None
            elif is_door_open:
                opened = e.ts
            else:
                opened = None
    if opened is not None and now - opened >= OUTING_MIN_S:
        out.append(TimelineItem(at=opened, kind="went_out"))
    return out


def resident_state(site: Site, events: Sequence[ActivityEvent], now: float) -> ResidentState:
    """At home / in bed / out, and where and when she last moved."""
    room = {r.id: r for r in site.rooms}
    beds = _bed_devices(site)
    doors = _outer_door_devices(site)
    last_move = next(
        (
            e
            for e in reversed(events)
            # Getting out of bed is moving too (in the morning it may be all there is yet).
            if _is_movement(e)
            or (e.measurement == "occupancy" and e.device_id in beds and not e.value)
        ),
        None,
    )
    last_bed = next(
        (e for e in reversed(events) if e.measurement == "occupancy" and e.device_id in beds),
        None,
    )
    last_door = next(
        (
            e
            for e in reversed(events)
            if e.measurement == "contact" and e.device_id in doors and e.value
        ),
        None,
    )
    state = ResidentState(state="unknown")
    if last_move is not None:
        r = room.get(last_move.room_id or "")
        state = ResidentState(
            state="at_home",
            last_active_at=last_move.ts,
            last_active_room=last_move.room_id,
            last_active_room_name=(r.name or r.id) if r else None,
            last_active_room_kind=r.kind if r else None,
        )
    if (
        last_bed is not None
        and last_bed.value
        and (last_move is None or last_move.ts <= last_bed.ts + 120)
    ):
        state.state, state.since = "in_bed", last_bed.ts
    elif (
        last_door is not None
        and (last_move is None or last_move.ts < last_door.ts)
        and now - last_door.ts >= OUTING_MIN_S
    ):
        state.state, state.since = "out", last_door.ts
    return state


def twelve_hours(now: float) -> tuple[float, float]:
    return now - timedelta(hours=12).total_seconds(), now
