"""The registry store on real SQLite and real PostgreSQL: apply, idempotence, updates,
prune, export round-trip, store-level uniqueness, invalid files changing nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import event, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from eldercare.db import Base, create_engine, session_factory
from eldercare.registry_apply import (
    RegistryError,
    apply_document,
    apply_file,
    delete_site,
    dump_registry,
    load_registry_file,
    parse_registry,
    upsert_site,
)
from eldercare.registry_model import Device, RegistryDocument, Site
from eldercare.registry_store import (
    CHILD_ROWS,
    REGISTRY_TABLES,
    DeviceRow,
    Sessions,
    SiteRow,
    init_store,
    list_org_units,
    load_document,
    load_index,
    load_site,
    registry_version,
    site_ids_in_scope,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "registry.yaml"


@dataclass
class Store:
    engine: AsyncEngine
    sessions: Sessions
    backend: str


@pytest.fixture(scope="module")
def registry_pg_url(pg_database: Callable[[str], str]) -> str:
    """A database of this module's own on the session's PostgreSQL server."""
    return pg_database("registry")


@pytest_asyncio.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
    loop_scope="function",
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/registry.db"
    else:
        url = request.getfixturevalue("registry_pg_url")
    engine = create_engine(url)
    async with engine.begin() as conn:
        # The PostgreSQL database lives for the module: start each test from empty tables.
        await conn.run_sync(lambda c: Base.metadata.drop_all(c, tables=REGISTRY_TABLES))
    await init_store(engine)
    yield Store(engine, session_factory(engine), request.param)
    await engine.dispose()


@pytest.fixture(scope="module")
def example() -> RegistryDocument:
    return load_registry_file(EXAMPLE)


@contextmanager
def count_writes(engine: AsyncEngine) -> Iterator[list[str]]:
    """Collect every INSERT/UPDATE/DELETE statement the engine sends."""
    writes: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            writes.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", listener)
    try:
        yield writes
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", listener)


async def row_counts(store: Store) -> dict[str, int]:
    async with store.sessions() as s:
        return {
            t.name: int(await s.scalar(select(func.count()).select_from(t)) or 0)
            for t in REGISTRY_TABLES
        }


def replace_site(doc: RegistryDocument, site: Site) -> RegistryDocument:
    return RegistryDocument(sites=[site if s.id == site.id else s for s in doc.sites])


def site_of(doc: RegistryDocument, site_id: str) -> Site:
    return next(s for s in doc.sites if s.id == site_id)


async def test_apply_creates_everything_and_reads_back_equal(
    store: Store, example: RegistryDocument
) -> None:
    result = await apply_document(store.sessions, example)

    counts = result.counts()
    assert counts["sites"]["created"] == 4
    for kind in ("rooms", "beds", "residents", "devices", "contacts"):
        expected = sum(len(getattr(s, kind)) for s in example.sites)
        assert counts[kind] == {"created": expected, "updated": 0, "deleted": 0}, kind
    assert result.version == 1
    assert await registry_version(store.sessions) == 1
    assert await load_document(store.sessions) == example

    index = await load_index(store.sessions)
    assert index.version == 1
    resolved = index.resolve_vendor(("z2m", "zigbee2mqtt", "黄河社区/3-2-401/床垫"))
    assert resolved is not None and resolved.device_id == "hh401-bed"
    assert resolved.resident_id == "zhang-xiuying"
    bed = index.resolve_vendor(("z2m", "zigbee2mqtt-xingfu", "1F/101/床2"))
    assert bed is not None and bed.site_id == "inst-xingfu" and bed.room_id == "r101"

    units = {u.path: u for u in await list_org_units(store.sessions)}
    assert set(units) == {
        "滨州市",
        "滨州市/滨城区",
        "滨州市/滨城区/市中街道",
        "滨州市/滨城区/市中街道/黄河社区",
        "滨州市/滨城区/北镇街道",
        "滨州市/滨城区/北镇街道/新立河社区",
        "滨州市/滨城区/幸福养老院",
    }
    community = units["滨州市/滨城区/市中街道/黄河社区"]
    assert (community.name, community.parent_path, community.depth) == (
        "黄河社区",
        "滨州市/滨城区/市中街道",
        4,
    )
    assert community.site_count == 2 and units["滨州市"].site_count == 4
    assert set(result.changes["org_units"].created) == set(units)


async def test_second_apply_changes_and_writes_nothing(
    store: Store, example: RegistryDocument
) -> None:
    await apply_document(store.sessions, example)
    before = await row_counts(store)
    async with store.sessions() as s:
        stamp = await s.scalar(select(func.max(SiteRow.updated_at)))

    with count_writes(store.engine) as writes:
        again = await apply_document(store.sessions, example)

    assert again.total == 0 and again.version == 1
    assert writes == []
    assert await row_counts(store) == before
    assert await registry_version(store.sessions) == 1
    async with store.sessions() as s:
        assert await s.scalar(select(func.max(SiteRow.updated_at))) == stamp


async def test_one_changed_field_is_exactly_one_update(
    store: Store, example: RegistryDocument
) -> None:
    await apply_document(store.sessions, example)
    site = site_of(example, "hh-3-2-401")
    resident = site.residents[0].model_copy(update={"flags": ["dementia", "hypertension", "copd"]})
    edited = replace_site(example, site.model_copy(update={"residents": [resident]}))

    with count_writes(store.engine) as writes:
        result = await apply_document(store.sessions, edited)

    assert result.total == 1
    assert result.changes["residents"].updated == ["hh-3-2-401/zhang-xiuying"]
    assert result.version == 2
    # the one row, and the version counter
    assert [w.split()[0].upper() for w in writes] == ["UPDATE", "UPDATE"]
    assert await load_document(store.sessions) == edited
    assert (await load_index(store.sessions)).version == 2


async def test_removed_and_added_children(store: Store, example: RegistryDocument) -> None:
    await apply_document(store.sessions, example)
    site = site_of(example, "hh-3-2-401")
    removed = site.device("hh401-bed")
    assert removed is not None and removed.vendor is not None
    # the bed strap's zigbee identity goes to a new device in the same apply
    replacement = removed.model_copy(update={"id": "hh401-bed-v2", "report_interval_s": 300})
    devices = [d for d in site.devices if d.id != "hh401-bed"] + [replacement]
    edited = replace_site(example, site.model_copy(update={"devices": devices}))

    result = await apply_document(store.sessions, edited)

    assert result.changes["devices"].deleted == ["hh-3-2-401/hh401-bed"]
    assert result.changes["devices"].created == ["hh-3-2-401/hh401-bed-v2"]
    assert result.total == 2
    index = await load_index(store.sessions)
    hit = index.resolve_vendor(("z2m", "zigbee2mqtt", "黄河社区/3-2-401/床垫"))
    assert hit is not None and hit.device_id == "hh401-bed-v2"
    assert index.device("hh401-bed") is None
    assert await load_document(store.sessions) == edited


async def test_sites_absent_from_the_file_stay_unless_pruned(
    store: Store, example: RegistryDocument
) -> None:
    await apply_document(store.sessions, example)
    partial = RegistryDocument(sites=example.sites[:2])

    kept = await apply_document(store.sessions, partial)
    assert kept.total == 0
    assert len((await load_document(store.sessions)).sites) == 4

    planned = await apply_document(store.sessions, partial, prune=True, dry_run=True)
    assert planned.dry_run and planned.changes["sites"].deleted == ["hh-xl-12-3", "inst-xingfu"]
    assert len((await load_document(store.sessions)).sites) == 4

    pruned = await apply_document(store.sessions, partial, prune=True)
    assert pruned.changes["sites"].deleted == ["hh-xl-12-3", "inst-xingfu"]
    dropped = [s for s in example.sites if s.id in {"hh-xl-12-3", "inst-xingfu"}]
    assert len(pruned.changes["devices"].deleted) == sum(len(s.devices) for s in dropped)
    assert len(pruned.changes["beds"].deleted) == 6
    assert set(pruned.changes["org_units"].deleted) == {
        "滨州市/滨城区/北镇街道",
        "滨州市/滨城区/北镇街道/新立河社区",
        "滨州市/滨城区/幸福养老院",
    }
    assert await load_document(store.sessions) == partial
    counts = await row_counts(store)
    assert counts["registry_devices"] == sum(len(s.devices) for s in partial.sites)
    assert counts["registry_vendor_bindings"] == sum(
        1 for s in partial.sites for d in s.devices if d.vendor is not None
    )


async def test_export_round_trips(store: Store, example: RegistryDocument) -> None:
    await apply_document(store.sessions, example)
    text = dump_registry(await load_document(store.sessions))

    exported = parse_registry(text, "export.yaml")
    assert exported == example
    assert '"20:30"' in text or "'20:30'" in text  # a clock time stays text
    again = await apply_document(store.sessions, exported)
    assert again.total == 0


async def test_device_ids_are_unique_across_the_store(
    store: Store, example: RegistryDocument
) -> None:
    await apply_document(store.sessions, example)
    other = Site(
        id="hh-new",
        kind="home",
        name="新家",
        organisation="滨州市/滨城区/市中街道/黄河社区",
        devices=[Device(id="hh401-bed", kind="bed")],
    )
    before = await load_document(store.sessions)

    with pytest.raises(RegistryError) as caught:
        await apply_document(store.sessions, RegistryDocument(sites=[other]), source="new.yaml")
    message = str(caught.value)
    assert message.startswith("new.yaml: sites[hh-new].devices[hh401-bed].id:")
    assert "already used by site 'hh-3-2-401'" in message
    assert await load_document(store.sessions) == before
    assert await registry_version(store.sessions) == 1

    # and the table refuses it even if the check were bypassed
    async with store.sessions() as s:
        with pytest.raises(IntegrityError):
            async with s.begin():
                await s.execute(
                    insert(DeviceRow).values(
                        id="hh401-bed",
                        site_id="hh-5-1-102",
                        kind="bed",
                        position=99,
                        data={},
                        updated_at=func.now(),
                    )
                )


async def test_vendor_bindings_are_unique_across_the_store(
    store: Store, example: RegistryDocument
) -> None:
    await apply_document(store.sessions, example)
    taken = site_of(example, "hh-3-2-401").device("hh401-door")
    assert taken is not None
    other = Site(
        id="hh-new",
        kind="home",
        name="新家",
        organisation="滨州市/滨城区/市中街道/黄河社区",
        devices=[Device(id="new-door", kind="door", vendor=taken.vendor)],
    )
    with pytest.raises(RegistryError) as caught:
        await upsert_site(store.sessions, other)
    assert "sites[hh-new].devices[new-door].vendor" in str(caught.value)
    assert "already bound to device 'hh401-door'" in str(caught.value)
    assert await load_site(store.sessions, "hh-new") is None


async def test_device_moves_between_sites(store: Store, example: RegistryDocument) -> None:
    await apply_document(store.sessions, example)
    a, b = site_of(example, "hh-3-2-401"), site_of(example, "hh-5-1-102")
    moving = a.device("hh401-kettle")
    assert moving is not None
    moved = moving.model_copy(update={"room": "kitchen"})
    edited = replace_site(
        replace_site(
            example,
            a.model_copy(update={"devices": [d for d in a.devices if d.id != moving.id]}),
        ),
        b.model_copy(update={"devices": [*b.devices, moved]}),
    )
    result = await apply_document(store.sessions, edited)
    assert result.changes["devices"].updated == ["hh-5-1-102/hh401-kettle"]
    assert result.total == 1
    resolved = (await load_index(store.sessions)).device("hh401-kettle")
    assert resolved is not None and resolved.site_id == "hh-5-1-102"


async def test_upsert_and_delete_one_site(store: Store, example: RegistryDocument) -> None:
    await apply_document(store.sessions, RegistryDocument(sites=example.sites[:1]))
    inst = site_of(example, "inst-xingfu")

    created = await upsert_site(store.sessions, inst)
    assert created.changes["sites"].created == ["inst-xingfu"]
    assert (await upsert_site(store.sessions, inst)).total == 0
    assert await load_site(store.sessions, "inst-xingfu") == inst
    doc = await load_document(store.sessions)
    assert [s.id for s in doc.sites] == ["hh-3-2-401", "inst-xingfu"]

    renamed = inst.model_copy(update={"name": "幸福颐养中心"})
    assert (await upsert_site(store.sessions, renamed)).changes["sites"].updated == ["inst-xingfu"]
    version = await registry_version(store.sessions)

    assert await delete_site(store.sessions, "inst-xingfu") is True
    assert await registry_version(store.sessions) == version + 1
    assert await load_site(store.sessions, "inst-xingfu") is None
    assert await delete_site(store.sessions, "inst-xingfu") is False
    assert await registry_version(store.sessions) == version + 1
    counts = await row_counts(store)
    for kind, row_cls in CHILD_ROWS.items():
        async with store.sessions() as s:
            left = await s.scalar(
                select(func.count())
                .select_from(row_cls)
                .where(row_cls.__table__.c.site_id == "inst-xingfu")
            )
        assert left == 0, kind
    assert counts["registry_sites"] == 1
    paths = {u.path for u in await list_org_units(store.sessions)}
    assert "滨州市/滨城区/幸福养老院" not in paths


async def test_scope_by_organisation_unit(store: Store, example: RegistryDocument) -> None:
    await apply_document(store.sessions, example)
    assert await site_ids_in_scope(store.sessions, "滨州市/滨城区/市中街道") == [
        "hh-3-2-401",
        "hh-5-1-102",
    ]
    assert len(await site_ids_in_scope(store.sessions, "滨州市")) == 4
    assert await site_ids_in_scope(store.sessions, "滨州市/滨城区/市中") == []
    assert await site_ids_in_scope(store.sessions, "滨州市/滨城区/幸福养老院") == ["inst-xingfu"]


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


BASE_TEXT = EXAMPLE.read_text(encoding="utf-8")
INVALID_FILES = {
    "yaml_syntax": (
        _edit(BASE_TEXT, "- {id: bedroom, kind: bedroom, name: 卧室}", "- {id: bedroom"),
        "YAML syntax error",
    ),
    "unknown_key": (
        _edit(BASE_TEXT, "        kind: door\n", "        kind: door\n        colour: white\n"),
        "sites[hh-3-2-401].devices[hh401-door].colour: unknown key",
    ),
    "bad_reference": (
        _edit(BASE_TEXT, "        kind: door\n        room: entrance", "        kind: door\n"
              "        room: garage"),
        "sites[hh-3-2-401].devices[hh401-door].room: refers to unknown id 'garage'",
    ),
    "duplicate_device_across_sites": (
        _edit(BASE_TEXT, "id: xl12-pir-living", "id: hh401-pir-kitchen"),
        "sites[hh-xl-12-3].devices[hh401-pir-kitchen].id: device id 'hh401-pir-kitchen' is "
        "already used by site 'hh-3-2-401'",
    ),
    "unknown_time_zone": (
        _edit(BASE_TEXT, "timezone: Asia/Shanghai", "timezone: Asia/Beijing"),
        "sites[hh-3-2-401].timezone: unknown time zone 'Asia/Beijing'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(INVALID_FILES))
async def test_invalid_file_fails_clearly_and_changes_nothing(
    store: Store, example: RegistryDocument, tmp_path: Path, case: str
) -> None:
    await apply_document(store.sessions, example)
    before = await row_counts(store)
    text, expected = INVALID_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text, encoding="utf-8")

    with count_writes(store.engine) as writes, pytest.raises(RegistryError) as caught:
        await apply_file(store.sessions, path, prune=True)

    message = str(caught.value)
    assert message.startswith(f"{path}:"), message
    assert expected in message, message
    assert writes == []
    assert await row_counts(store) == before
    assert await registry_version(store.sessions) == 1
    assert await load_document(store.sessions) == example


async def test_concurrent_appliers_queue_up_on_postgresql(
    registry_pg_url: str, example: RegistryDocument
) -> None:
    engine = create_engine(registry_pg_url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: Base.metadata.drop_all(c, tables=REGISTRY_TABLES))
    await init_store(engine)
    sessions = session_factory(engine)
    try:
        first = RegistryDocument(sites=example.sites[:2])
        second = RegistryDocument(sites=example.sites[2:])
        results = await asyncio.gather(
            apply_document(sessions, first), apply_document(sessions, second)
        )
        assert sorted(r.version for r in results) == [1, 2]
        assert len((await load_document(sessions)).sites) == 4
        # both saw and kept the other's organisation units
        assert len(await list_org_units(sessions)) == 7
    finally:
        await engine.dispose()


async def test_reordering_is_an_update_and_export_follows(
    store: Store, example: RegistryDocument
) -> None:
    await apply_document(store.sessions, example)
    site = site_of(example, "hh-3-2-401")
    rooms = [site.rooms[-1], *site.rooms[:-1]]  # entrance first
    edited = replace_site(example, site.model_copy(update={"rooms": rooms}))

    result = await apply_document(store.sessions, edited)

    assert result.total == len(rooms) and len(result.changes["rooms"].updated) == len(rooms)
    stored = await load_site(store.sessions, "hh-3-2-401")
    assert stored is not None and [r.id for r in stored.rooms] == [r.id for r in rooms]
    assert (await apply_document(store.sessions, edited)).total == 0


async def test_upsert_refuses_a_site_binding_one_identity_twice(store: Store) -> None:
    door = Device(id="d1", kind="door", vendor={"z2m": {"friendly_name": "x/门"}})
    twin = Device(id="d2", kind="door", vendor={"z2m": {"friendly_name": "x/门"}})
    site = Site(id="hh-x", kind="home", name="X", organisation="滨州市", devices=[door, twin])
    with pytest.raises(RegistryError) as caught:
        await upsert_site(store.sessions, site)
    assert str(caught.value) == (
        "site hh-x: sites[hh-x].devices[d2].vendor: vendor binding z2m/zigbee2mqtt/x/门 is"
        " already bound to device 'd1'"
    )
    assert await registry_version(store.sessions) == 0


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ([None, None, None], [0, 1, 2]),  # all new
        ([0, 2, 5], [0, 2, 5]),  # siblings removed: gaps are fine, nothing rewritten
        ([0, None, 5], [0, 1, 5]),  # inserted where there is room
        ([3, 4, None], [3, 4, 5]),  # appended
        ([3, None, 4], [0, 1, 2]),  # no room: renumber
        ([5, 2], [0, 1]),  # reordered: renumber
    ],
)
def test_positions_are_kept_where_the_order_allows(
    stored: list[int | None], expected: list[int]
) -> None:
    from eldercare.registry_apply import _keep_positions

    rows: list[dict[str, object]] = [{} for _ in stored]
    _keep_positions(rows, stored)
    assert [r["position"] for r in rows] == expected
