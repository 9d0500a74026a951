"""The family's daily summary: one short message per day, at the contact's chosen
local time (`Contact.daily_summary`, "HH:MM"; opt-in), about their relative.

    【每日小结】张秀英 11月23日：06:42 起床；夜间如厕 2 次；外出 1小时35分钟；
    今日警报 1 条：02:41 跌倒，由王敏处置（上门协助）。查看：<link>

Facts come from a `DayFactsSource` (InfluxDB readings through InfluxQL in
production: `InfluxDayFacts`), so composing a summary is testable without a
database. The fact-finding rules are the pure functions below. A summary goes
through the notification log like any message (purpose `summary`, one
idempotency key per contact, resident and local date): sent once per day, even
across restarts.

Windows (site local time), for a summary sent at time T:
- night: the last 22:00–06:00 window that started before T;
- got up: first time the resident's bed became empty (else first movement outside
  the bedroom) between 04:00 and 12:00 of the morning after that night;
- away and alerts: the 24 hours before T.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from alerts.messages import local_time
from alerts.recipients import ContactPreferences, channel_hash, summary_contact
from alerts.records import AlertRecord, PlannedNotification
from alerts.store import AlertFilter, AlertStore
from alerts.terms import kind_term, language_of, outcome_term
from eldercare.domain import DeviceKind, RoomKind
from eldercare.influx import InfluxClient, quote_ident, quote_string, ts_to_ns
from eldercare.logs import get_logger
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import Contact, Resident, Site

log = get_logger(__name__)

VISIT_GAP_S = 10 * 60  # bathroom activity closer than this is one visit
AWAY_QUIET_S = 10 * 60  # no indoor activity this long after the door: out
SEND_GRACE_S = 3 * 3600  # a summary more than 3 h late is skipped, not sent at midnight


@dataclass(frozen=True, slots=True)
class Windows:
    night: tuple[float, float]
    morning: tuple[float, float]
    day: tuple[float, float]


def windows(send_at: float, timezone: str) -> Windows:
    tz = ZoneInfo(timezone)
    local = datetime.fromtimestamp(send_at, tz)
    night_start = datetime.combine(local.date(), time(22, 0), tz)
    if night_start.timestamp() > send_at:
        night_start -= timedelta(days=1)
    night_end = night_start + timedelta(hours=8)
    morning_start = datetime.combine(night_end.date(), time(4, 0), tz)
    morning_end = datetime.combine(night_end.date(), time(12, 0), tz)
    return Windows(
        night=(night_start.timestamp(), min(night_end.timestamp(), send_at)),
        morning=(morning_start.timestamp(), min(morning_end.timestamp(), send_at)),
        day=(send_at - 86400.0, send_at),
    )


@dataclass(frozen=True, slots=True)
class DayFacts:
    got_up_at: float | None = None
    night_bathroom_visits: int | None = None  # None: no bathroom sensor
    away_seconds: float | None = None  # None: no outer door sensor


class DayFactsSource(Protocol):
    async def day_facts(self, site: Site, resident: Resident, w: Windows) -> DayFacts: ...


# ---- pure fact-finding --------------------------------------------------------------


def got_up_time(
    bed: Sequence[tuple[float, bool]],
    movement_outside_bedroom: Sequence[float],
    window: tuple[float, float],
) -> float | None:
    """First bed exit (occupied → empty) in the window; else first movement elsewhere."""
    lo, hi = window
    occupied_before = False
    for ts, occupied in sorted(bed):
        if ts >= hi:
            break
        if ts >= lo and occupied_before and not occupied:
            return ts
        occupied_before = occupied
    return next((ts for ts in sorted(movement_outside_bedroom) if lo <= ts < hi), None)


def bathroom_visits(
    activity: Sequence[float], window: tuple[float, float], gap_s: float = VISIT_GAP_S
) -> int:
    """Bathroom activity bursts in the window; a gap longer than `gap_s` starts a new visit."""
    lo, hi = window
    visits = 0
    last: float | None = None
    for ts in sorted(t for t in activity if lo <= t < hi):
        if last is None or ts - last > gap_s:
            visits += 1
        last = ts
    return visits


def away_seconds(
    door_openings: Sequence[float],
    indoor_activity: Sequence[float],
    window: tuple[float, float],
    quiet_s: float = AWAY_QUIET_S,
) -> float:
    """Time out: from a door opening with no indoor activity in the `quiet_s` after it,
    until the next indoor activity (the return), clipped to the window. A door opening
    followed soon by movement inside is someone coming in or just looking out."""
    lo, hi = window
    activity = sorted(indoor_activity)
    total = 0.0
    covered_until = -math.inf
    for d in sorted(t for t in door_openings if t < hi):
        if d < covered_until:
            continue  # the door of the return itself
        first = next((a for a in activity if a > d), None)
        if first is not None and first - d <= quiet_s:
            continue
        back = first if first is not None else hi
        covered_until = back
        start, end = max(d, lo), min(back, hi)
        if end > start:
            total += end - start
    return total


# ---- InfluxDB ---------------------------------------------------------------------


class InfluxDayFacts:
    """Day facts from the readings in InfluxDB (docs/influx-schema.md)."""

    def __init__(self, client: InfluxClient, db: str) -> None:
        self.client = client
        self.db = db

    async def _rows(
        self,
        measurement: str,
        field: str,
        site: Site,
        devices: Sequence[str] | None,
        lo: float,
        hi: float,
    ) -> list[tuple[float, object, str | None]]:
        where = [f'"site" = {quote_string(site.id)}']
        if devices is not None:
            if not devices:
                return []
            where.append("(" + " OR ".join(f'"device" = {quote_string(d)}' for d in devices) + ")")
        where.append(f"time >= {ts_to_ns(lo)} AND time < {ts_to_ns(hi)}")
        q = (
            f'SELECT {quote_ident(field)}, "room" FROM {quote_ident(measurement)} '
            f"WHERE {' AND '.join(where)}"
        )
        rows = await self.client.query(q, db=self.db)
        return [(row["time"] / 1e9, row.get(field), row.get("room")) for row in rows]

    async def day_facts(self, site: Site, resident: Resident, w: Windows) -> DayFacts:
        lo = min(w.night[0], w.morning[0], w.day[0])
        hi = max(w.night[1], w.morning[1], w.day[1])
        beds = [
            d.id
            for d in site.devices
            if d.kind is DeviceKind.BED
            and (d.resident == resident.id or (d.resident is None and len(site.residents) == 1))
        ]
        doors = [d.id for d in site.devices if d.kind is DeviceKind.DOOR and d.outer_door]
        bathrooms = {r.id for r in site.rooms if r.kind in (RoomKind.BATHROOM, RoomKind.TOILET)}
        bedroom = resident.room
        bed_rows = await self._rows("occupancy", "occupied", site, beds, lo, hi)
        motion = await self._rows("motion", "motion", site, None, lo, hi)
        presence = await self._rows("presence", "present", site, None, lo, hi)
        flush = await self._rows("flush", "flushed", site, None, lo, hi)
        active = [(ts, room) for ts, v, room in [*motion, *presence] if v is True]
        bathroom = [ts for ts, room in active if room in bathrooms]
        bathroom += [ts for ts, v, room in flush if v is True]
        elsewhere = [ts for ts, room in active if room is not None and room != bedroom]
        door_rows = await self._rows("contact", "open", site, doors, lo, hi)
        openings = [ts for ts, v, _ in door_rows if v is True]
        has_bathroom_sensor = any(
            d.room in bathrooms
            for d in site.devices
            if d.kind
            in (DeviceKind.MOTION, DeviceKind.PRESENCE, DeviceKind.FLUSH, DeviceKind.FALL_RADAR)
        )
        return DayFacts(
            got_up_at=got_up_time(
                [(ts, bool(v)) for ts, v, _ in bed_rows if isinstance(v, bool)],
                elsewhere,
                w.morning,
            ),
            night_bathroom_visits=bathroom_visits(bathroom, w.night)
            if has_bathroom_sensor
            else None,
            away_seconds=away_seconds(openings, [ts for ts, _ in active], w.day) if doors else None,
        )


# ---- composing ----------------------------------------------------------------------


def _duration(seconds: float, lang: str) -> str:
    minutes = round(seconds / 60)
    h, m = divmod(minutes, 60)
    if lang == "zh-CN":
        return f"{h}小时{m}分钟" if h else f"{m}分钟"
    return f"{h} h {m} min" if h else f"{m} min"


def _alert_line(a: AlertRecord, tz: str, send_at: float, lang: str) -> str:
    when = local_time(a.raised_at, tz, send_at)
    kind = kind_term(a.kind, lang)
    if a.status == "resolved":
        how = outcome_term(a.outcome or "other", lang)
        if lang == "zh-CN":
            return f"{when} {kind}，由{a.resolved_by}处置（{how}）"
        return f"{when} {kind}, handled by {a.resolved_by} ({how})"
    if a.status == "acknowledged":
        return (
            f"{when} {kind}，{a.acknowledged_by}正在处理"
            if lang == "zh-CN"
            else (f"{when} {kind}, being handled by {a.acknowledged_by}")
        )
    return f"{when} {kind}，待处理" if lang == "zh-CN" else f"{when} {kind}, open"


def compose_summary(
    site: Site,
    resident: Resident,
    facts: DayFacts,
    alerts: Sequence[AlertRecord],
    language: str,
    send_at: float,
    public_url: str,
) -> tuple[str, str]:
    lang = language_of(language)
    tz = site.timezone
    local = datetime.fromtimestamp(send_at, ZoneInfo(tz))
    link = f"{public_url.rstrip('/')}/family"
    alerts = sorted(alerts, key=lambda a: a.raised_at)
    if lang == "zh-CN":
        parts = [
            f"{local_time(facts.got_up_at, tz)} 起床" if facts.got_up_at else "未见起床记录",
        ]
        if facts.night_bathroom_visits is not None:
            parts.append(f"夜间如厕 {facts.night_bathroom_visits} 次")
        if facts.away_seconds is not None:
            parts.append(
                f"外出 {_duration(facts.away_seconds, lang)}"
                if facts.away_seconds >= 60
                else "未外出"
            )
        if alerts:
            lines = "；".join(_alert_line(a, tz, send_at, lang) for a in alerts)
            parts.append(f"今日警报 {len(alerts)} 条：{lines}")
        else:
            parts.append("今日无警报")
        title = f"【每日小结】{resident.name}"
        body = (
            f"【每日小结】{resident.name} {local.month}月{local.day}日："
            + "；".join(parts)
            + f"。查看：{link}"
        )
        return title, body
    parts = [
        f"up at {local_time(facts.got_up_at, tz)}" if facts.got_up_at else "no getting up seen"
    ]
    if facts.night_bathroom_visits is not None:
        n = facts.night_bathroom_visits
        parts.append(f"{n} night bathroom visit{'s' if n != 1 else ''}")
    if facts.away_seconds is not None:
        parts.append(
            f"away from home {_duration(facts.away_seconds, lang)}"
            if facts.away_seconds >= 60
            else "stayed home"
        )
    if alerts:
        lines = "; ".join(_alert_line(a, tz, send_at, lang) for a in alerts)
        parts.append(f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''} today: {lines}")
    else:
        parts.append("no alerts today")
    title = f"[Daily summary] {resident.name}"
    body = (
        f"[Daily summary] {resident.name}, {local.strftime('%d %b')}: "
        + "; ".join(parts)
        + f". Details: {link}"
    )
    return title, body


# ---- scheduling ---------------------------------------------------------------------


def summary_due(contact: Contact, now: float, timezone: str) -> float | None:
    """The send time of today's summary if it is due now (and not over 3 h late)."""
    if not contact.daily_summary:
        return None
    tz = ZoneInfo(timezone)
    local = datetime.fromtimestamp(now, tz)
    hh, mm = (int(x) for x in contact.daily_summary.split(":"))
    at = datetime.combine(local.date(), time(hh, mm), tz).timestamp()
    return at if at <= now < at + SEND_GRACE_S else None


class DailySummaries:
    """The pipeline's daily-summary hook: `await summaries(now)` queues what is due."""

    def __init__(
        self,
        store: AlertStore,
        index_provider: Callable[[], RegistryIndex],
        facts: DayFactsSource,
        public_url: str,
        check_every_s: float = 60.0,
        preferences: ContactPreferences | None = None,
    ) -> None:
        self.preferences = preferences
        self.store = store
        self.index_provider = index_provider
        self.facts = facts
        self.public_url = public_url
        self.check_every_s = check_every_s
        self._last_check: float | None = None

    async def __call__(self, now: float) -> int:
        if self._last_check is not None and now - self._last_check < self.check_every_s:
            return 0
        self._last_check = now
        index = self.index_provider()
        prefs = {}
        if self.preferences is not None:
            try:
                prefs = dict(await self.preferences.contact_preferences())
            except Exception as exc:  # then the registry's times and channels hold
                log.warning("contact preferences unavailable", extra={"error": str(exc)})
        due: list[tuple[Site, Contact, Resident, float, str]] = []
        for site in index.sites.values():
            for registered in site.contacts:
                # A family's own choice (portal) of time, on/off and channels wins.
                contact = summary_contact(registered, prefs.get((site.id, registered.id)))
                if contact.role != "family" or not contact.apprise:
                    continue
                at = summary_due(contact, now, site.timezone)
                if at is None:
                    continue
                date = datetime.fromtimestamp(at, ZoneInfo(site.timezone)).date().isoformat()
                residents = [
                    r for r in site.residents if not contact.residents or r.id in contact.residents
                ]
                for r in residents:
                    due.append(
                        (site, contact, r, at, f"summary/{site.id}/{contact.id}/{r.id}/{date}")
                    )
        if not due:
            return 0
        done = await self.store.existing_notification_prefixes([k for *_, k in due])
        planned: list[PlannedNotification] = []
        for site, contact, resident, at, key in due:
            if key in done:
                continue
            try:
                facts = await self.facts.day_facts(site, resident, windows(at, site.timezone))
            except Exception as exc:  # no facts today is no reason to stay silent
                log.warning("day facts unavailable", extra={"site": site.id, "error": str(exc)})
                facts = DayFacts()
            alerts = [
                a
                for a in await self.store.find(
                    AlertFilter(sites=[site.id], since=at - 86400.0, until=at, limit=1000)
                )
                if a.resident in (resident.id, None)
            ]
            title, body = compose_summary(
                site, resident, facts, alerts, contact.language, at, self.public_url
            )
            for url in contact.apprise:
                h = channel_hash(url)
                planned.append(
                    PlannedNotification(
                        idempotency_key=f"{key}/{h}",
                        alert_id=None,
                        purpose="summary",
                        step=0,
                        round=0,
                        site=site.id,
                        recipient=f"family:{contact.id}",
                        role="family",
                        language=contact.language,
                        channel_hash=h,
                        title=title,
                        body=body,
                    )
                )
        return await self.store.add_notifications(planned, now)
