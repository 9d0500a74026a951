"""Sites, rooms, beds, residents, devices, contacts and the organisation tree.

Everyone on the staff reads what lies in their scope; only admins edit. A site is
the unit of change in the store (`upsert_site`), so editing one resident
rewrites its site with the resident replaced, validated as a whole.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field, ValidationError

from eldercare import registry_store
from eldercare.registry_model import Bed, Contact, Device, Resident, Room, Site
from gateway.auth import can_see_resident, in_scope
from gateway.context import (
    Admin,
    Auth,
    Ctx,
    Staff,
    audit,
    not_found,
    resident_path,
    visible_site,
    visible_sites,
)
from gateway.users import Role

router = APIRouter(tags=["registry"])

Collection = Literal["rooms", "beds", "residents", "devices", "contacts"]
_MODELS: dict[str, type[Room | Bed | Resident | Device | Contact]] = {
    "rooms": Room,
    "beds": Bed,
    "residents": Resident,
    "devices": Device,
    "contacts": Contact,
}


class SiteSummaryOut(BaseModel):
    id: str
    kind: str
    name: str
    organisation: str
    address: str
    latitude: float | None = None
    longitude: float | None = None
    rooms: int
    beds: int
    residents: int
    devices: int


class ResidentOut(BaseModel):
    id: str
    site_id: str
    site_name: str
    site_kind: str
    organisation: str
    name: str
    birth_year: int | None = None
    sex: str | None = None
    room: str | None = None
    room_name: str | None = None
    bed: str | None = None
    bed_name: str | None = None
    flags: list[str] = Field(default_factory=list)
    phone: str | None = None
    notes: str = ""
    address: str = ""
    latitude: float | None = None
    longitude: float | None = None
    timezone: str


class ContactOut(BaseModel):
    id: str
    name: str
    role: str
    phone: str | None = None
    language: str
    order: int


class OrgUnitOut(BaseModel):
    path: str
    name: str
    parent_path: str | None = None
    depth: int
    site_count: int


class DeviceOut(BaseModel):
    id: str
    site_id: str
    kind: str
    room: str | None = None
    resident: str | None = None
    report_interval_s: float


class ChangeResult(BaseModel):
    version: int = Field(description="registry version after the change")
    changes: dict[str, dict[str, int]]


def summary_of(site: Site) -> SiteSummaryOut:
    return SiteSummaryOut(
        id=site.id,
        kind=site.kind,
        name=site.name,
        organisation=site.organisation,
        address=site.address,
        latitude=site.latitude,
        longitude=site.longitude,
        rooms=len(site.rooms),
        beds=len(site.beds),
        residents=len(site.residents),
        devices=len(site.devices),
    )


def resident_out(site: Site, resident: Resident) -> ResidentOut:
    room = site.room(resident.room)
    bed = next((b for b in site.beds if b.id == resident.bed), None)
    if room is None and bed is not None:
        room = site.room(bed.room)
    return ResidentOut(
        id=resident.id,
        site_id=site.id,
        site_name=site.name,
        site_kind=site.kind,
        organisation=site.organisation,
        name=resident.name,
        birth_year=resident.birth_year,
        sex=resident.sex,
        room=room.id if room else None,
        room_name=(room.name or room.id) if room else None,
        bed=bed.id if bed else None,
        bed_name=(bed.name or bed.id) if bed else None,
        flags=list(resident.flags),
        phone=resident.phone,
        notes=resident.notes,
        address=site.address,
        latitude=site.latitude,
        longitude=site.longitude,
        timezone=site.timezone,
    )


def contacts_for(site: Site, resident_id: str) -> list[ContactOut]:
    """The resident's contacts in escalation order: linked ones, then the site's general ones."""
    chosen = [c for c in site.contacts if resident_id in c.residents or not c.residents]
    chosen.sort(key=lambda c: (c.order, 0 if resident_id in c.residents else 1, c.id))
    return [
        ContactOut(
            id=c.id, name=c.name, role=c.role, phone=c.phone, language=c.language, order=c.order
        )
        for c in chosen
    ]


def resident_site(
    index: Any, principal: Any, resident_id: str, site_id: str | None = None
) -> tuple[Site, Resident]:
    """The resident `(site_id, resident_id)` names, if the principal may see her.

    Resident ids are unique only within a site. Without a site (the older
    `/api/residents/{id}` paths) the id must name exactly one resident the principal
    may see; several is a 409 pointing at the site-qualified path."""
    candidates = index.document.sites if site_id is None else [index.sites.get(site_id)]
    found = [
        (site, resident)
        for site in candidates
        if site is not None
        and (resident := site.resident(resident_id)) is not None
        and can_see_resident(principal.account, site, resident_id)
    ]
    if not found:
        raise not_found("resident not found")
    if len(found) > 1:
        sites = ", ".join(s.id for s, _ in found)
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"resident id {resident_id!r} names residents of several sites ({sites}): "
            f"use {resident_path('{site_id}', resident_id)}",
        )
    return found[0]


@router.get("/api/sites", response_model=list[SiteSummaryOut], summary="Sites in my scope")
async def list_sites(principal: Staff, ctx: Ctx, kind: str | None = None) -> list[SiteSummaryOut]:
    index = await ctx.index()
    return [summary_of(s) for s in visible_sites(index, principal) if kind in (None, s.kind)]


@router.get("/api/sites/{site_id}", response_model=Site, summary="A site with everything in it")
async def get_site(site_id: str, principal: Staff, ctx: Ctx, request: Request) -> Site:
    site = visible_site(await ctx.index(), principal, site_id)
    await audit(ctx, request, principal, "read_site", site.id, [r.id for r in site.residents])
    return site


@router.get("/api/sites/{site_id}/rooms", response_model=list[Room], summary="Rooms of a site")
async def list_rooms(site_id: str, principal: Staff, ctx: Ctx) -> list[Room]:
    return list(visible_site(await ctx.index(), principal, site_id).rooms)


@router.get("/api/sites/{site_id}/beds", response_model=list[Bed], summary="Beds of a site")
async def list_beds(site_id: str, principal: Staff, ctx: Ctx) -> list[Bed]:
    return list(visible_site(await ctx.index(), principal, site_id).beds)


@router.get("/api/devices", response_model=list[DeviceOut], summary="Devices in my scope")
async def list_devices(principal: Staff, ctx: Ctx, site_id: str | None = None) -> list[DeviceOut]:
    index = await ctx.index()
    return [
        DeviceOut(
            id=d.id,
            site_id=s.id,
            kind=d.kind,
            room=d.room,
            resident=d.resident,
            report_interval_s=d.report_interval_s,
        )
        for s in visible_sites(index, principal)
        if site_id in (None, s.id)
        for d in s.devices
    ]


@router.get("/api/residents", response_model=list[ResidentOut], summary="Residents I may see")
async def list_residents(
    principal: Auth, ctx: Ctx, request: Request, site_id: str | None = None
) -> list[ResidentOut]:
    index = await ctx.index()
    out: list[ResidentOut] = []
    for site in index.document.sites:
        if site_id not in (None, site.id):
            continue
        for r in site.residents:
            if can_see_resident(principal.account, site, r.id):
                out.append(resident_out(site, r))
    if out:
        # One row per listing, not per resident: a district lists thousands at once.
        await audit(ctx, request, principal, "list_residents", site_id, [None])
    return out


@router.get(
    "/api/sites/{site_id}/residents/{resident_id}", response_model=ResidentOut, summary="A resident"
)
@router.get(
    "/api/residents/{resident_id}",
    response_model=ResidentOut,
    summary="A resident, by an id unique among those I may see (else 409)",
)
async def get_resident(
    resident_id: str, principal: Auth, ctx: Ctx, request: Request, site_id: str | None = None
) -> ResidentOut:
    site, resident = resident_site(await ctx.index(), principal, resident_id, site_id)
    await audit(ctx, request, principal, "read_resident", site.id, [resident.id])
    return resident_out(site, resident)


@router.get(
    "/api/sites/{site_id}/residents/{resident_id}/contacts",
    response_model=list[ContactOut],
    summary="A resident's contacts in escalation order",
)
@router.get(
    "/api/residents/{resident_id}/contacts",
    response_model=list[ContactOut],
    summary="A resident's contacts, by an id unique among those I may see (else 409)",
)
async def get_contacts(
    resident_id: str, principal: Auth, ctx: Ctx, request: Request, site_id: str | None = None
) -> list[ContactOut]:
    site, resident = resident_site(await ctx.index(), principal, resident_id, site_id)
    await audit(ctx, request, principal, "read_contacts", site.id, [resident.id])
    return contacts_for(site, resident.id)


@router.get("/api/org-units", response_model=list[OrgUnitOut], summary="Organisation tree")
async def org_units(principal: Staff, ctx: Ctx) -> list[OrgUnitOut]:
    units = await registry_store.list_org_units(ctx.sessions)
    scope = principal.account.scope
    # Counts of sites the principal may see: a shared parent must not reveal how many
    # sites lie in other scopes below it.
    counts: dict[str, int] = {}
    for site in visible_sites(await ctx.index(), principal):
        for depth in range(1, len(site.org_path) + 1):
            prefix = "/".join(site.org_path[:depth])
            counts[prefix] = counts.get(prefix, 0) + 1
    out = []
    for u in units:
        path = tuple(u.path.split("/"))
        # Staff see their own subtree, and its ancestors (names only) to place it.
        if (
            principal.role is not Role.ADMIN
            and scope is not None
            and not (in_scope(scope, path) or in_scope(path, scope))
        ):
            continue
        out.append(
            OrgUnitOut(
                path=u.path,
                name=u.name,
                parent_path=u.parent_path,
                depth=u.depth,
                site_count=u.site_count if principal.role is Role.ADMIN else counts.get(u.path, 0),
            )
        )
    return out


# --- edits (admin) --------------------------------------------------------------------


async def _store(ctx: Ctx, site: Site) -> ChangeResult:
    from eldercare.registry_apply import RegistryError

    try:
        result = await registry_store.upsert_site(
            ctx.sessions, site, extra_validators=ctx.registry_validators
        )
    except RegistryError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    await ctx.index_provider.refresh()
    return ChangeResult(version=result.version, changes=result.counts())


def _rebuild(site: Site, collection: str, items: list[Any]) -> Site:
    try:
        return Site.model_validate({**site.model_dump(), collection: items})
    except ValidationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in exc.errors()],
        ) from exc


@router.put(
    "/api/sites/{site_id}",
    response_model=ChangeResult,
    tags=["admin"],
    summary="Create or replace a site",
)
async def put_site(site_id: str, body: Site, _: Admin, ctx: Ctx) -> ChangeResult:
    if body.id != site_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body id differs from path")
    return await _store(ctx, body)


@router.delete("/api/sites/{site_id}", status_code=204, tags=["admin"], summary="Delete a site")
async def delete_site(site_id: str, _: Admin, ctx: Ctx) -> None:
    if not await registry_store.delete_site(ctx.sessions, site_id):
        raise not_found("site not found")
    await ctx.index_provider.refresh()


@router.put(
    "/api/sites/{site_id}/{collection}/{item_id}",
    response_model=ChangeResult,
    tags=["admin"],
    summary="Create or replace a room, bed, resident, device or contact of a site",
)
async def put_item(
    site_id: str, collection: Collection, item_id: str, body: dict[str, Any], _: Admin, ctx: Ctx
) -> ChangeResult:
    site = (await ctx.index()).sites.get(site_id)
    if site is None:
        raise not_found("site not found")
    try:
        item = _MODELS[collection].model_validate({**body, "id": item_id})
    except ValidationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in exc.errors()],
        ) from exc
    items = [i.model_dump() for i in getattr(site, collection) if i.id != item_id]
    existing = [i.id for i in getattr(site, collection)]
    dumped = item.model_dump()
    if item_id in existing:
        items.insert(existing.index(item_id), dumped)
    else:
        items.append(dumped)
    return await _store(ctx, _rebuild(site, collection, items))


@router.delete(
    "/api/sites/{site_id}/{collection}/{item_id}",
    response_model=ChangeResult,
    tags=["admin"],
    summary="Remove a room, bed, resident, device or contact from a site",
)
async def delete_item(
    site_id: str, collection: Collection, item_id: str, _: Admin, ctx: Ctx
) -> ChangeResult:
    site = (await ctx.index()).sites.get(site_id)
    if site is None or item_id not in {i.id for i in getattr(site, collection)}:
        raise not_found(f"{collection[:-1]} not found")
    items = [i.model_dump() for i in getattr(site, collection) if i.id != item_id]
    return await _store(ctx, _rebuild(site, collection, items))
