"""The registry in the relational store: tables, reading it back, and the change counter.

Convention: every function takes the application's `async_sessionmaker` (called
`sessions`) and runs in a transaction of its own, so a caller never has to think
about transaction boundaries and a reader never sees a half-applied registry.

Each entity is a row with its key columns (ids, site id, kind, organisation
path...) for queries and constraints, plus `data`: the entity's pydantic JSON,
which makes reading the registry back exact (`load_document` returns what was
applied). The organisation tree is derived from the sites' organisation paths.
`registry_meta.version` is bumped by every change, so ingest can notice a new
registry with one cheap query (`registry_version`).

Writing (apply a document, upsert or delete a site) lives in
`eldercare.registry_apply`; `apply_document`, `upsert_site` and `delete_site` are
re-exported here so callers need a single import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from eldercare.db import Base
from eldercare.registry_index import PlannedAbsence, RegistryIndex
from eldercare.registry_model import Bed, Contact, Device, RegistryDocument, Resident, Room, Site

if TYPE_CHECKING:
    Sessions = async_sessionmaker[AsyncSession]
else:
    Sessions = async_sessionmaker

ID_LEN = 64  # registry_model identifiers are at most 64 characters
VERSION_KEY = "version"

# The order in which results are reported and children are written.
ENTITY_TYPES: tuple[str, ...] = (
    "sites",
    "rooms",
    "beds",
    "residents",
    "devices",
    "contacts",
    "org_units",
)
SITE_CHILDREN: tuple[str, ...] = ("rooms", "beds", "residents", "devices", "contacts")


def _site_fk() -> ForeignKey:
    return ForeignKey("registry_sites.id", ondelete="CASCADE")


class SiteRow(Base):
    __tablename__ = "registry_sites"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String)
    organisation: Mapped[str] = mapped_column(String, index=True)
    position: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RoomRow(Base):
    __tablename__ = "registry_rooms"

    site_id: Mapped[str] = mapped_column(String(ID_LEN), _site_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    floor: Mapped[str | None] = mapped_column(String, nullable=True)
    position: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BedRow(Base):
    __tablename__ = "registry_beds"

    site_id: Mapped[str] = mapped_column(String(ID_LEN), _site_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(ID_LEN))
    position: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ResidentRow(Base):
    __tablename__ = "registry_residents"

    site_id: Mapped[str] = mapped_column(String(ID_LEN), _site_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String)
    room_id: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True)
    bed_id: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True)
    position: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeviceRow(Base):
    """Device ids are unique across all sites: the primary key is the device id alone."""

    __tablename__ = "registry_devices"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(ID_LEN), _site_fk(), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    room_id: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True)
    bed_id: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True)
    resident_id: Mapped[str | None] = mapped_column(String(ID_LEN), nullable=True)
    position: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VendorBindingRow(Base):
    """A vendor identity (e.g. a zigbee2mqtt base topic + friendly name) bound to one device.

    Derived from the devices' `vendor` field; the primary key makes a second
    device claiming the same identity fail in the store too.
    """

    __tablename__ = "registry_vendor_bindings"

    key: Mapped[str] = mapped_column(String, primary_key=True)  # JSON array of the key parts
    vendor: Mapped[str] = mapped_column(String(16))
    device_id: Mapped[str] = mapped_column(
        String(ID_LEN), ForeignKey("registry_devices.id", ondelete="CASCADE"), index=True
    )


class ContactRow(Base):
    __tablename__ = "registry_contacts"

    site_id: Mapped[str] = mapped_column(String(ID_LEN), _site_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    position: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OrgUnitRow(Base):
    __tablename__ = "registry_org_units"

    path: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str] = mapped_column(String)
    parent_path: Mapped[str | None] = mapped_column(String, nullable=True, index=True)
    depth: Mapped[int] = mapped_column(Integer)


class PlannedAbsenceRow(Base):
    """A declared absence ("at my daughter's until Sunday 18:00"): live state set by family
    or staff through the API, kept apart from the registry rows so that re-applying the
    registry YAML does not wipe it. Read into the index with the registry (one per resident)."""

    __tablename__ = "planned_absence"

    site_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    resident_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    until: Mapped[str] = mapped_column(String(16))  # site-local YYYY-MM-DDTHH:MM
    until_ts: Mapped[float] = mapped_column(Float, index=True)  # the same, epoch seconds
    note: Mapped[str] = mapped_column(String(200), default="")
    declared_by: Mapped[str] = mapped_column(String(128))
    declared_at: Mapped[float] = mapped_column(Float)


class RegistryMetaRow(Base):
    __tablename__ = "registry_meta"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


CHILD_ROWS: dict[str, type[Base]] = {
    "rooms": RoomRow,
    "beds": BedRow,
    "residents": ResidentRow,
    "devices": DeviceRow,
    "contacts": ContactRow,
}
CHILD_MODELS: dict[str, type[Room | Bed | Resident | Device | Contact]] = {
    "rooms": Room,
    "beds": Bed,
    "residents": Resident,
    "devices": Device,
    "contacts": Contact,
}
REGISTRY_TABLES: list[Table] = [
    t.__table__  # type: ignore[misc]
    for t in (
        SiteRow,
        RoomRow,
        BedRow,
        ResidentRow,
        DeviceRow,
        VendorBindingRow,
        ContactRow,
        OrgUnitRow,
        PlannedAbsenceRow,
        RegistryMetaRow,
    )
]


@dataclass(frozen=True, slots=True)
class OrgUnit:
    """A node of the organisation tree, e.g. 滨州市/滨城区/市中街道 (depth 3)."""

    path: str
    name: str
    parent_path: str | None
    depth: int
    site_count: int = 0  # sites in this unit's whole subtree

    def contains(self, organisation: str) -> bool:
        return org_path_within(organisation, self.path)


@dataclass
class EntityChanges:
    """Keys of the entities of one type that an apply created, updated or deleted.

    Keys are `site` for sites, `site/id` for the entities of a site, the path for
    organisation units.
    """

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted)


@dataclass
class ApplyResult:
    """What an apply changed (or, with `dry_run`, would change), per entity type."""

    changes: dict[str, EntityChanges] = field(
        default_factory=lambda: {t: EntityChanges() for t in ENTITY_TYPES}
    )
    version: int = 0  # registry version after the apply
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(c.total for c in self.changes.values())

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            t: {"created": len(c.created), "updated": len(c.updated), "deleted": len(c.deleted)}
            for t, c in self.changes.items()
        }

    def summary(self, *, max_details: int = 40) -> str:
        """Human-readable report: totals per type, then up to `max_details` changed entities."""
        if self.total == 0:
            head = "no changes" + (" (dry run)" if self.dry_run else "")
        elif self.dry_run:
            head = f"{self.total} change(s) planned (dry run, nothing written)"
        else:
            head = f"{self.total} change(s) applied"
        lines = [f"{head}; registry version {self.version}"]
        for kind, c in self.changes.items():
            if c.total:
                lines.append(
                    f"  {kind:<10} created {len(c.created):>4}  updated {len(c.updated):>4}"
                    f"  deleted {len(c.deleted):>4}"
                )
        details = [
            f"  {sign} {_SINGULAR[kind]} {key}"
            for kind, c in self.changes.items()
            for sign, keys in (("+", c.created), ("~", c.updated), ("-", c.deleted))
            for key in keys
        ]
        lines.extend(details[:max_details])
        if len(details) > max_details:
            lines.append(f"  ... and {len(details) - max_details} more")
        return "\n".join(lines)


_SINGULAR = {
    "sites": "site",
    "rooms": "room",
    "beds": "bed",
    "residents": "resident",
    "devices": "device",
    "contacts": "contact",
    "org_units": "org unit",
}


@dataclass(frozen=True, slots=True)
class SiteSummary:
    id: str
    kind: str
    name: str
    organisation: str
    rooms: int
    beds: int
    residents: int
    devices: int
    contacts: int


def org_path_within(organisation: str, scope: str) -> bool:
    """True if `organisation` is the unit `scope` or lies below it."""
    return organisation == scope or organisation.startswith(scope + "/")


def org_prefixes(organisation: str) -> list[str]:
    """Every unit on the path, root first: a/b/c -> [a, a/b, a/b/c]."""
    parts = organisation.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


async def init_store(engine: AsyncEngine) -> None:
    """Create the registry tables if missing (Alembic migrations will take over later)."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: Base.metadata.create_all(c, tables=REGISTRY_TABLES))
    # The version row exists from the start, so appliers always have a row to lock.
    try:
        async with engine.begin() as conn:
            exists = await conn.scalar(
                select(RegistryMetaRow.value).where(RegistryMetaRow.key == VERSION_KEY)
            )
            if exists is None:
                await conn.execute(insert(RegistryMetaRow).values(key=VERSION_KEY, value=0))
    except IntegrityError:
        pass  # another process created it meanwhile


async def registry_version(sessions: Sessions) -> int:
    """The change counter: bumped by every apply that changes anything. 0 for an empty store."""
    async with sessions() as session:
        value = await session.scalar(
            select(RegistryMetaRow.value).where(RegistryMetaRow.key == VERSION_KEY)
        )
    return int(value or 0)


async def lock_version(session: AsyncSession) -> int | None:
    """Read the version with a row lock, so concurrent writers (on PostgreSQL) queue up."""
    return await session.scalar(
        select(RegistryMetaRow.value).where(RegistryMetaRow.key == VERSION_KEY).with_for_update()
    )


async def bump_version(session: AsyncSession, version: int | None) -> int:
    """Write `version` + 1 (the value `lock_version` read) inside the caller's transaction;
    every process's watcher then reloads the registry. Returns the new version."""
    new_version = (version or 0) + 1
    if version is None:
        await session.execute(insert(RegistryMetaRow).values(key=VERSION_KEY, value=new_version))
    else:
        await session.execute(
            update(RegistryMetaRow)
            .where(RegistryMetaRow.key == VERSION_KEY)
            .values(value=new_version),
            execution_options={"synchronize_session": False},
        )
    return new_version


async def load_document(sessions: Sessions) -> RegistryDocument:
    """The whole registry, as the model the YAML file is validated by."""
    async with sessions() as session, session.begin():
        return await read_document(session)


async def load_index(sessions: Sessions) -> RegistryIndex:
    """The registry as ingest's lookup index, stamped with the version it was read at."""
    async with sessions() as session, session.begin():
        version = await session.scalar(
            select(RegistryMetaRow.value).where(RegistryMetaRow.key == VERSION_KEY)
        )
        document = await read_document(session)
        declared = await read_planned_absences(session)
    return RegistryIndex(document, version=int(version or 0), planned_absences=declared)


async def read_planned_absences(
    session: AsyncSession,
) -> dict[tuple[str, str], PlannedAbsence]:
    """Declared absences by `(site_id, resident_id)`, read inside the caller's transaction."""
    rows = await select_rows(session, PlannedAbsenceRow, PlannedAbsenceRow.resident_id, None)
    return {
        (r["site_id"], r["resident_id"]): PlannedAbsence(
            resident_id=r["resident_id"],
            site_id=r["site_id"],
            until=r["until"],
            until_ts=r["until_ts"],
            note=r["note"],
            declared_by=r["declared_by"],
            declared_at=r["declared_at"],
        )
        for r in rows
    }


async def read_document(
    session: AsyncSession, site_ids: Iterable[str] | None = None
) -> RegistryDocument:
    """The registry (or only the given sites) read inside the caller's transaction."""
    wanted = None if site_ids is None else sorted(set(site_ids))
    site_rows = await select_rows(session, SiteRow, SiteRow.id, wanted)
    site_rows.sort(key=lambda r: (r["position"], r["id"]))
    children: dict[str, dict[str, list[Any]]] = {
        r["id"]: {kind: [] for kind in SITE_CHILDREN} for r in site_rows
    }
    for kind, row_cls in CHILD_ROWS.items():
        model = CHILD_MODELS[kind]
        rows = await select_rows(session, row_cls, row_cls.site_id, wanted)  # type: ignore[attr-defined]
        rows.sort(key=lambda r: (r["position"], r["id"]))
        for row in rows:
            if row["site_id"] in children:
                children[row["site_id"]][kind].append(model.model_validate(row["data"]))
    sites = [Site.model_validate({**r["data"], **children[r["id"]]}) for r in site_rows]
    return RegistryDocument(sites=sites)


async def load_site(sessions: Sessions, site_id: str) -> Site | None:
    """One site with everything in it, or None."""
    async with sessions() as session, session.begin():
        doc = await read_document(session, [site_id])
    return doc.sites[0] if doc.sites else None


async def list_org_units(sessions: Sessions) -> list[OrgUnit]:
    """The organisation tree, parents before children, with site counts per subtree."""
    async with sessions() as session:
        units = (await session.scalars(select(OrgUnitRow))).all()
        orgs = (await session.execute(select(SiteRow.organisation))).scalars().all()
    counts: dict[str, int] = {}
    for org in orgs:
        for prefix in org_prefixes(org):
            counts[prefix] = counts.get(prefix, 0) + 1
    return sorted(
        (OrgUnit(u.path, u.name, u.parent_path, u.depth, counts.get(u.path, 0)) for u in units),
        key=lambda u: u.path.split("/"),
    )


async def site_ids_in_scope(sessions: Sessions, scope: str) -> list[str]:
    """Ids of the sites in the organisation unit `scope` and below (for scoping users)."""
    escaped = scope.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    async with sessions() as session:
        rows = await session.scalars(
            select(SiteRow.id)
            .where(
                or_(
                    SiteRow.organisation == scope,
                    SiteRow.organisation.like(escaped + "/%", escape="\\"),
                )
            )
            .order_by(SiteRow.position, SiteRow.id)
        )
        return list(rows.all())


async def site_summaries(sessions: Sessions) -> list[SiteSummary]:
    """Per-site counts of rooms, beds, residents, devices and contacts, in registry order."""
    async with sessions() as session:
        sites = (
            await session.execute(
                select(SiteRow.id, SiteRow.kind, SiteRow.name, SiteRow.organisation).order_by(
                    SiteRow.position, SiteRow.id
                )
            )
        ).all()
        counts: dict[str, dict[str, int]] = {}
        for kind, row_cls in CHILD_ROWS.items():
            site_col = row_cls.site_id  # type: ignore[attr-defined]
            for site_id, n in (
                await session.execute(select(site_col, func.count()).group_by(site_col))
            ).all():
                counts.setdefault(site_id, {})[kind] = int(n)
    return [
        SiteSummary(
            id=s.id,
            kind=s.kind,
            name=s.name,
            organisation=s.organisation,
            **{kind: counts.get(s.id, {}).get(kind, 0) for kind in SITE_CHILDREN},
        )
        for s in sites
    ]


async def apply_document(
    sessions: Sessions, doc: RegistryDocument, *, prune: bool = False, dry_run: bool = False
) -> ApplyResult:
    """Make the store match `doc` for the sites it names (all others too with `prune`)."""
    from eldercare import registry_apply

    return await registry_apply.apply_document(sessions, doc, prune=prune, dry_run=dry_run)


async def upsert_site(
    sessions: Sessions, site: Site, *, extra_validators: Sequence[Any] = ()
) -> ApplyResult:
    """Create or replace one site with everything in it (`extra_validators`: see
    `registry_apply.upsert_site`)."""
    from eldercare import registry_apply

    return await registry_apply.upsert_site(sessions, site, extra_validators=extra_validators)


async def delete_site(sessions: Sessions, site_id: str) -> bool:
    """Delete one site with everything in it; False if there was none."""
    from eldercare import registry_apply

    return await registry_apply.delete_site(sessions, site_id)


_CHUNK = 500  # stays well below SQLite's and asyncpg's bound-parameter limits


def chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


async def select_rows(
    session: AsyncSession, row_cls: type[Any], column: Any, values: Sequence[Any] | None
) -> list[dict[str, Any]]:
    """All rows, or the rows whose `column` is in `values` (chunked), as plain dicts
    (no ORM identity map: reading thousands of sites stays cheap)."""
    query = select(*row_cls.__table__.columns)
    if values is None:
        return [dict(m) for m in (await session.execute(query)).mappings()]
    out: list[dict[str, Any]] = []
    for part in chunks(values):
        result = await session.execute(query.where(column.in_(part)))
        out.extend(dict(m) for m in result.mappings())
    return out
