"""Personal data over its life: how long it is kept, a resident's export, and erasure.

Retention (per data kind, `DEFAULT_RETENTION`): our writers put every point in the
database's default retention policy and every reader (Grafana, the gateway)
reads it without naming one, so retention is enforced in two layers that need no
change to them: the default policy's DURATION is the longest any kind is kept
(alert events, 5 years) so nothing is kept for ever, and kinds kept shorter are
cut by `DELETE FROM <measurement> WHERE time < now() - <days>`, run by
`eldercare privacy retention --apply` (daily, from cron or a systemd timer).

Export (`export_resident`) gathers everything held about one resident: the
registry entry with its devices and contacts, the alerts with their history
and notifications, and the readings. Erasure (`erase_resident`) removes the
readings, blanks personal fields in the registry, the alerts and the
notification bodies, and records who erased what and when; the rest of the
audit trail is left as it is (an alert's history keeps its rows, with notes
blanked, plus one `erased` row).

Which readings are a resident's: those tagged with the resident; in a home
whose only resident this is, every reading of the site (the sensors of a
one-person home describe that person whether tagged or not).

Like `eldercare_app.cli`, this module is wiring across the stores: it reads the
alert store's tables (imported lazily) as well as the registry's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Float, Integer, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from eldercare.db import Base
from eldercare.errors import EldercareError
from eldercare.influx import InfluxClient, encode_line, quote_ident, quote_string
from eldercare.registry_model import Site
from eldercare.registry_store import (
    VERSION_KEY,
    ContactRow,
    RegistryMetaRow,
    ResidentRow,
    Sessions,
    SiteRow,
    read_document,
)

ERASED = "（已删除）erased"  # shown wherever an erased person's name was
_PAGE = 10_000  # InfluxDB rows per query page on export


class PrivacyError(EldercareError, ValueError):
    """A privacy request that cannot be carried out as asked (e.g. an unknown resident)."""


# --------------------------------------------------------------------------- audit


class PrivacyAuditRow(Base):
    """One export or erasure: who, when, of whom, and what it touched (counts, no content)."""

    __tablename__ = "privacy_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)  # wall time
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))  # export | erase | retention
    site_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resident_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


async def audit_entries(sessions: Sessions, resident_id: str | None = None) -> list[dict[str, Any]]:
    async with sessions() as session:
        query = select(PrivacyAuditRow).order_by(PrivacyAuditRow.id)
        if resident_id is not None:
            query = query.where(PrivacyAuditRow.resident_id == resident_id)
        rows = (await session.scalars(query)).all()
    return [
        {
            "at": r.at,
            "actor": r.actor,
            "action": r.action,
            "site_id": r.site_id,
            "resident_id": r.resident_id,
            "details": r.details,
        }
        for r in rows
    ]


# --------------------------------------------------------------------------- retention


@dataclass(frozen=True, slots=True)
class RetentionRule:
    kind: str
    days: int
    measurements: tuple[str, ...]  # () = every measurement no other rule names
    description: str


DEFAULT_RETENTION: tuple[RetentionRule, ...] = (
    RetentionRule("accel", 30, ("accel",), "wearable accelerometer summaries"),
    RetentionRule(
        "health", 90, ("ingest_stats", "site_status", "device_status"), "platform health"
    ),
    RetentionRule("alert_events", 1826, ("alert_event",), "alert lifecycle events (5 years)"),
    RetentionRule("readings", 180, (), "every other reading: raw sensor data"),
)


def rule_for(measurement: str, rules: Sequence[RetentionRule] = DEFAULT_RETENTION) -> RetentionRule:
    for rule in rules:
        if measurement in rule.measurements:
            return rule
    return next(rule for rule in rules if not rule.measurements)


@dataclass
class RetentionReport:
    default_policy: str
    default_days: int
    policy_statement: str
    deleted: dict[str, int] = field(default_factory=dict)  # measurement → points removed


async def _count(client: InfluxClient, db: str, measurement: str, where: str) -> int:
    query = f"SELECT count(*) FROM {quote_ident(measurement)} WHERE {where}"
    rows = await client.query(query, db)
    return max((int(v) for r in rows for k, v in r.items() if k.startswith("count_")), default=0)


async def apply_retention(
    client: InfluxClient,
    db: str,
    now: float,
    rules: Sequence[RetentionRule] = DEFAULT_RETENTION,
    dry_run: bool = False,
) -> RetentionReport:
    """Set the default policy to the longest kind and delete what shorter kinds outlived."""
    longest = max(rule.days for rule in rules)
    policies = await client.query("SHOW RETENTION POLICIES", db)
    default = next((p["name"] for p in policies if p.get("default")), None)
    if default is None:
        name = "eldercare"
        statement = (
            f"CREATE RETENTION POLICY {quote_ident(name)} ON {quote_ident(db)} "
            f"DURATION {longest}d REPLICATION 1 DEFAULT"
        )
    else:
        name = default
        statement = (
            f"ALTER RETENTION POLICY {quote_ident(name)} ON {quote_ident(db)} "
            f"DURATION {longest}d DEFAULT"
        )
    report = RetentionReport(name, longest, statement)
    if not dry_run:
        await client.query(statement, db)
    measurements = [r["name"] for r in await client.query("SHOW MEASUREMENTS", db)]
    for measurement in measurements:
        rule = rule_for(measurement, rules)
        if rule.days >= longest:
            continue
        cutoff = datetime.fromtimestamp(now - rule.days * 86400, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        where = f"time < '{cutoff}'"
        old = await _count(client, db, measurement, where)
        if old and not dry_run:
            await client.query(f"DELETE FROM {quote_ident(measurement)} WHERE {where}", db)
        report.deleted[measurement] = old
    return report


# --------------------------------------------------------------------------- whose data


def find_site(sites: Iterable[Site], resident_id: str, site_id: str | None = None) -> Site:
    """The site of a resident id (ids are unique within a site; name the site if several)."""
    found = [s for s in sites if s.resident(resident_id) and (site_id is None or s.id == site_id)]
    if not found:
        where = f" at {site_id!r}" if site_id else ""
        raise PrivacyError(f"no resident {resident_id!r}{where}")
    if len(found) > 1:
        ids = ", ".join(s.id for s in found)
        raise PrivacyError(f"resident id {resident_id!r} is used at {ids}: name the site")
    return found[0]


def whole_site_is_theirs(site: Site, resident_id: str) -> bool:
    return str(site.kind) == "home" and [r.id for r in site.residents] == [resident_id]


def readings_filter(site: Site, resident_id: str) -> str:
    """InfluxQL WHERE clause of a resident's points (tags; for alert_event a field)."""
    where = f'"site" = {quote_string(site.id)}'
    if whole_site_is_theirs(site, resident_id):
        return where
    return f'{where} AND "resident" = {quote_string(resident_id)}'


async def _measurements(client: InfluxClient, db: str) -> list[str]:
    return [r["name"] for r in await client.query("SHOW MEASUREMENTS", db)]


async def resident_readings(
    client: InfluxClient, db: str, site: Site, resident_id: str
) -> dict[str, list[dict[str, Any]]]:
    """Every point of the resident, per measurement, tags included (times in epoch ns)."""
    where = readings_filter(site, resident_id)
    out: dict[str, list[dict[str, Any]]] = {}
    for measurement in await _measurements(client, db):
        offset = 0
        while True:
            rows = await client.query(
                f"SELECT * FROM {quote_ident(measurement)} WHERE {where} "
                f"GROUP BY * LIMIT {_PAGE} OFFSET {offset}",
                db,
            )
            for row in rows:
                tags = row.pop("_tags")
                row.pop("_measurement", None)
                point = {"time_ns": row.pop("time"), "tags": tags}
                point["fields"] = {k: v for k, v in row.items() if v is not None}
                out.setdefault(measurement, []).append(point)
            if len(rows) < _PAGE:
                break
            offset += _PAGE
    return out


# --------------------------------------------------------------------------- export


def _row_dict(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


async def _alert_records(
    session: AsyncSession, site_id: str, resident_id: str
) -> tuple[list[Any], list[Any], list[Any]]:
    from alerts.models import AlertHistoryRow, AlertRow, NotificationLogRow

    alerts = (
        await session.scalars(
            select(AlertRow)
            .where(AlertRow.site == site_id, AlertRow.resident == resident_id)
            .order_by(AlertRow.id)
        )
    ).all()
    ids = [a.id for a in alerts]
    history = (
        (
            await session.scalars(
                select(AlertHistoryRow)
                .where(AlertHistoryRow.alert_id.in_(ids))
                .order_by(AlertHistoryRow.id)
            )
        ).all()
        if ids
        else []
    )
    notes = (
        (
            await session.scalars(
                select(NotificationLogRow)
                .where(NotificationLogRow.alert_id.in_(ids))
                .order_by(NotificationLogRow.id)
            )
        ).all()
        if ids
        else []
    )
    return list(alerts), list(history), list(notes)


async def export_resident(
    sessions: Sessions,
    influx: InfluxClient | None,
    db: str,
    resident_id: str,
    site_id: str | None = None,
    actor: str = "cli",
    now: float | None = None,
) -> dict[str, Any]:
    """Everything held about one resident, as JSON-ready data; the export is audited."""
    async with sessions() as session, session.begin():
        doc = await read_document(session)
        site = find_site(doc.sites, resident_id, site_id)
        alerts, history, notifications = await _alert_records(session, site.id, resident_id)
    resident = site.resident(resident_id)
    assert resident is not None
    by_alert: dict[int, list[dict[str, Any]]] = {}
    for h in history:
        by_alert.setdefault(h.alert_id, []).append(_row_dict(h))
    sent: dict[int, list[dict[str, Any]]] = {}
    for n in notifications:
        sent.setdefault(n.alert_id, []).append(_row_dict(n))
    readings = await resident_readings(influx, db, site, resident_id) if influx else {}
    export = {
        "format": "eldercare-resident-export/1",
        "exported_at": now if now is not None else time.time(),
        "resident": resident.model_dump(mode="json"),
        "site": {
            "id": site.id,
            "kind": str(site.kind),
            "name": site.name,
            "address": site.address,
            "organisation": site.organisation,
        },
        "devices": [d.model_dump(mode="json") for d in site.devices if d.resident == resident_id],
        "contacts": [
            c.model_dump(mode="json", exclude={"apprise"})
            for c in site.contacts
            if resident_id in c.residents
        ],
        "alerts": [
            {
                **_row_dict(a),
                "history": by_alert.get(a.id, []),
                "notifications": sent.get(a.id, []),
            }
            for a in alerts
        ],
        "readings": readings,
        "readings_scope": "whole site" if whole_site_is_theirs(site, resident_id) else "tagged",
    }
    await _audit(
        sessions,
        actor,
        "export",
        site.id,
        resident_id,
        {"alerts": len(alerts), "points": sum(len(v) for v in readings.values())},
        now,
    )
    return export


async def _audit(
    sessions: Sessions,
    actor: str,
    action: str,
    site_id: str | None,
    resident_id: str | None,
    details: dict[str, Any],
    now: float | None,
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            PrivacyAuditRow(
                at=now if now is not None else time.time(),
                actor=actor,
                action=action,
                site_id=site_id,
                resident_id=resident_id,
                details=details,
            )
        )


# --------------------------------------------------------------------------- erasure


@dataclass
class ErasureReport:
    site_id: str
    resident_id: str
    whole_site: bool
    series_dropped: dict[str, int] = field(default_factory=dict)  # measurement → points
    alert_events_anonymised: int = 0
    alerts_scrubbed: int = 0
    history_rows_scrubbed: int = 0
    notifications_scrubbed: int = 0
    contacts_blanked: list[str] = field(default_factory=list)
    family_accounts_deleted: int = 0  # linked to this resident only
    family_accounts_unlinked: int = 0  # linked to others too: only this link removed
    gateway_audit_rows_blanked: int = 0
    detector_snapshots_trimmed: int = 0  # the resident's entries taken out
    detector_snapshots_deleted: int = 0  # state that could not be separated from them

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_FREE_TEXT_KEYS = frozenset({"note", "notes", "text", "message", "body", "title", "comment"})


def scrub(value: Any, secrets: Sequence[str]) -> Any:
    """A copy with free-text fields blanked and any string naming the person replaced."""
    if isinstance(value, dict):
        return {
            k: (ERASED if k in _FREE_TEXT_KEYS and v else scrub(v, secrets))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str) and any(s and s in value for s in secrets):
        return ERASED
    return value


async def _drop_readings(
    client: InfluxClient, db: str, site: Site, resident_id: str, report: ErasureReport
) -> None:
    where = readings_filter(site, resident_id)
    for measurement in await _measurements(client, db):
        if measurement == "alert_event":
            continue  # statistics of response times stay; the resident is anonymised below
        n = await _count(client, db, measurement, where)
        if n:
            await client.query(f"DROP SERIES FROM {quote_ident(measurement)} WHERE {where}", db)
            report.series_dropped[measurement] = n
    # alert_event carries the resident as a field: rewrite those points in place (same
    # series and time overwrite) with the resident replaced.
    rows = await client.query(
        f'SELECT * FROM "alert_event" WHERE "site" = {quote_string(site.id)} '
        f'AND "resident" = {quote_string(resident_id)} GROUP BY *',
        db,
    )
    lines = []
    for row in rows:
        tags = row.pop("_tags")
        row.pop("_measurement", None)
        ts = row.pop("time")
        fields = {k: v for k, v in row.items() if v is not None and k not in tags}
        fields["resident"] = ERASED
        lines.append(encode_line("alert_event", tags, fields, ts))
    if lines:
        await client.write(lines, db)
    report.alert_events_anonymised = len(lines)


def _names(value: Any, resident_id: str) -> bool:
    """Whether a snapshot's state mentions the resident (as a key or a string)."""
    if isinstance(value, dict):
        return any(k == resident_id or _names(v, resident_id) for k, v in value.items())
    if isinstance(value, list):
        return any(_names(v, resident_id) for v in value)
    return bool(value == resident_id)


def without_resident(value: Any, resident_id: str) -> Any:
    """A detector state with the resident's entries taken out: keys naming them, and list
    items (e.g. `[kind, resident, ...]` records) that hold their id directly."""
    if isinstance(value, dict):
        return {k: without_resident(v, resident_id) for k, v in value.items() if k != resident_id}
    if isinstance(value, list):
        return [
            without_resident(v, resident_id)
            for v in value
            if v != resident_id and not (isinstance(v, list) and resident_id in v)
        ]
    return value


async def _erase_detector_state(
    session: AsyncSession, site_id: str, resident_id: str, whole_site: bool, report: ErasureReport
) -> None:
    """Learned baselines are about the person: take theirs out of the site's snapshots
    (all of a one-person home's), deleting a row whose rest still names them; the
    detectors warm up again from what is left."""
    from detectors.snapshot_store import DetectorSnapshot

    rows = (
        await session.scalars(select(DetectorSnapshot).where(DetectorSnapshot.site_id == site_id))
    ).all()
    for row in rows:
        if whole_site:
            await session.delete(row)
            report.detector_snapshots_deleted += 1
            continue
        if not _names(row.state, resident_id):
            continue
        trimmed = without_resident(row.state, resident_id)
        if _names(trimmed, resident_id):
            await session.delete(row)
            report.detector_snapshots_deleted += 1
        else:
            row.state = trimmed
            report.detector_snapshots_trimmed += 1


async def _erase_gateway_records(
    session: AsyncSession,
    site_id: str,
    resident_id: str,
    contact_ids: Sequence[str],
    secrets: Sequence[str],
    report: ErasureReport,
) -> None:
    """Family accounts of this resident alone go (with their tokens, preferences and
    contact links); others lose the link. The read audit keeps its rows, with the
    request path, client address and deleted accounts' names blanked."""
    from sqlalchemy import and_, delete, or_

    from gateway.audit import AuditRow
    from gateway.auth import TokenRow
    from gateway.family_link import FamilyContactRow
    from gateway.routes_family import FamilyPrefRow
    from gateway.users import Role, UserRow, resident_ref

    family = (await session.scalars(select(UserRow).where(UserRow.role == Role.FAMILY))).all()
    deleted_ids: list[int] = []
    deleted_names: list[str] = []
    # Accounts name residents as `site_id/resident_id`: the same id at another site
    # is someone else.
    ref = resident_ref(site_id, resident_id)
    for user in family:
        linked = list(user.residents or [])
        if ref not in linked:
            continue
        if linked == [ref]:
            deleted_ids.append(user.id)
            deleted_names.append(user.username)
            await session.delete(user)
            report.family_accounts_deleted += 1
        else:
            user.residents = [r for r in linked if r != ref]
            report.family_accounts_unlinked += 1
    if deleted_ids:
        await session.execute(delete(TokenRow).where(TokenRow.user_id.in_(deleted_ids)))
        await session.execute(delete(FamilyPrefRow).where(FamilyPrefRow.user_id.in_(deleted_ids)))
        await session.execute(
            delete(FamilyContactRow).where(FamilyContactRow.user_id.in_(deleted_ids))
        )
    if contact_ids:
        await session.execute(
            delete(FamilyContactRow).where(
                FamilyContactRow.site_id == site_id, FamilyContactRow.contact_id.in_(contact_ids)
            )
        )
    for pref in (await session.scalars(select(FamilyPrefRow))).all():
        cleaned = scrub(pref.data, secrets)
        if cleaned != pref.data:
            pref.data = cleaned
    about = [and_(AuditRow.site_id == site_id, AuditRow.resident_id == resident_id)]
    if deleted_names:
        about.append(AuditRow.username.in_(deleted_names))
    for row in (await session.scalars(select(AuditRow).where(or_(*about)))).all():
        row.path, row.client = "", ""
        if row.username in deleted_names:
            row.username = ERASED
        report.gateway_audit_rows_blanked += 1


async def erase_resident(
    sessions: Sessions,
    influx: InfluxClient | None,
    db: str,
    resident_id: str,
    by: str,
    site_id: str | None = None,
    now: float | None = None,
) -> ErasureReport:
    """Remove a resident's readings and blank their personal data everywhere; audited.

    The registry keeps the resident's id (alerts and devices refer to it) under the
    placeholder name. Re-applying a registry file that still names the person would
    bring the details back: remove them from the file too."""
    from alerts.models import AlertHistoryRow, NotificationLogRow

    if not by.strip():
        raise PrivacyError("name who is erasing (--by)")
    wall = now if now is not None else time.time()
    async with sessions() as session, session.begin():
        site = find_site((await read_document(session)).sites, resident_id, site_id)
    resident = site.resident(resident_id)
    assert resident is not None
    whole_site = whole_site_is_theirs(site, resident_id)
    report = ErasureReport(site.id, resident_id, whole_site)
    secrets = [s for s in (resident.name, resident.phone) if s and len(s) >= 2]
    contacts = [c for c in site.contacts if c.residents == [resident_id]]
    secrets += [s for c in contacts for s in (c.name, c.phone) if s and len(s) >= 2]

    if influx is not None:
        await _drop_readings(influx, db, site, resident_id, report)

    async with sessions() as session, session.begin():
        row = await session.get(ResidentRow, (site.id, resident_id))
        assert row is not None
        blank = resident.model_copy(
            update={
                "name": ERASED,
                "birth_year": None,
                "sex": None,
                "phone": None,
                "notes": "",
                "flags": [],
                "detectors": {},
            }
        )
        row.name = ERASED
        row.data = blank.model_dump(mode="json")
        for contact in contacts:
            crow = await session.get(ContactRow, (site.id, contact.id))
            if crow is not None:
                crow.data = contact.model_copy(
                    update={"name": ERASED, "phone": None, "apprise": [], "daily_summary": None}
                ).model_dump(mode="json")
                report.contacts_blanked.append(contact.id)
        if whole_site:
            srow = await session.get(SiteRow, site.id)
            if srow is not None:
                srow.name = ERASED
                srow.data = {
                    **srow.data,
                    "name": ERASED,
                    "address": "",
                    "latitude": None,
                    "longitude": None,
                }
        version = await session.scalar(
            select(RegistryMetaRow.value).where(RegistryMetaRow.key == VERSION_KEY)
        )
        await session.execute(
            update(RegistryMetaRow)
            .where(RegistryMetaRow.key == VERSION_KEY)
            .values(value=int(version or 0) + 1)
        )

        alerts, history, notifications = await _alert_records(session, site.id, resident_id)
        for alert in alerts:
            alert.note = ERASED if alert.note else alert.note
            alert.details = scrub(alert.details, secrets)
            alert.evidence = scrub(alert.evidence, secrets)
            report.alerts_scrubbed += 1
            session.add(
                AlertHistoryRow(
                    alert_id=alert.id,
                    action="erased",
                    actor=by,
                    event_time=wall,
                    wall_time=wall,
                    data={"reason": "personal data erased on request"},
                )
            )
        for h in history:
            cleaned = scrub(h.data, secrets)
            if cleaned != h.data:
                h.data = cleaned
                report.history_rows_scrubbed += 1
        # Notifications about the resident's alerts, and any other message of the site
        # (e.g. a daily summary) that names them.
        others = (
            await session.scalars(
                select(NotificationLogRow).where(
                    NotificationLogRow.site == site.id, NotificationLogRow.alert_id.is_(None)
                )
            )
        ).all()
        for n in [*notifications, *others]:
            named = any(s in n.title or s in n.body for s in secrets)
            if n in notifications or named:
                n.title, n.body = ERASED, ERASED
                report.notifications_scrubbed += 1
        await _erase_gateway_records(
            session, site.id, resident_id, [c.id for c in contacts], secrets, report
        )
        await _erase_detector_state(session, site.id, resident_id, whole_site, report)
        session.add(
            PrivacyAuditRow(
                at=wall,
                actor=by,
                action="erase",
                site_id=site.id,
                resident_id=resident_id,
                details=report.to_json(),
            )
        )
    return report
