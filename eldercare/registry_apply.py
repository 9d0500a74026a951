"""Applying a registry declaratively: validate a YAML file, then load → plan → write.

`apply_document` makes the store match a document for the sites it names,
creating, updating and deleting exactly the rows that differ, in one
transaction; applying the same document twice changes nothing the second time
(no write, no version bump). Sites the document does not name are left alone
unless `prune` is set. Everything that can be wrong with a file (YAML syntax,
unknown keys, bad values, dangling references, ids clashing with what the store
already holds) is reported as a `RegistryError` naming the file, the key path
and the reason, and nothing is changed.

An apply is three steps in one transaction: `load_stored` reads what the diff needs,
`plan_changes` (pure, no I/O) decides every create, update and delete, and
`_execute` writes the plan.

Functions take an `async_sessionmaker` (see `eldercare.registry_store`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from eldercare.errors import EldercareError
from eldercare.registry_model import Device, RegistryDocument, Site, vendor_keys
from eldercare.registry_store import (
    CHILD_MODELS,
    CHILD_ROWS,
    ENTITY_TYPES,
    SITE_CHILDREN,
    ApplyResult,
    DeviceRow,
    OrgUnitRow,
    Sessions,
    SiteRow,
    VendorBindingRow,
    bump_version,
    chunks,
    lock_version,
    org_prefixes,
    select_rows,
)
from eldercare.yaml_limits import YamlLimitError, check_yaml_limits

# --------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a registry file."""

    path: str  # key path, e.g. sites[hh-401].devices[bed-1].kind; "" for the whole file
    message: str
    line: int | None = None  # 1-based line in the file, when known
    column: int | None = None

    def render(self, source: str) -> str:
        where = source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


# A check of a whole document by another part (e.g. the detectors' settings overrides),
# run before anything is written; the kernel cannot import those parts itself.
RegistryValidator = Callable[[RegistryDocument], list[Problem]]


def run_validators(
    doc: RegistryDocument, validators: Sequence[RegistryValidator], source: str
) -> None:
    """RegistryError listing every problem the validators find (nothing changed)."""
    problems = [p for check in validators for p in check(doc)]
    if problems:
        raise RegistryError(source, problems)


class RegistryError(EldercareError):
    """A registry file or document that cannot be applied; nothing was changed.

    `str(error)` is one line per problem: `FILE[:LINE[:COL]]: KEY.PATH: reason`.
    """

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(p.render(self.source) for p in self.problems)


# --------------------------------------------------------------------------- reading files


class _RegistryLoader(yaml.SafeLoader):
    """Safe YAML, but refusing duplicate keys and keeping clock times such as 20:30 as text
    (YAML 1.1 would read them as the base-60 integer 1230)."""


_CLOCK_RE = re.compile(r"^[0-9]{1,2}:[0-5][0-9](?::[0-5][0-9])?$")
_RegistryLoader.yaml_implicit_resolvers = {
    first: ([("tag:yaml.org,2002:str", _CLOCK_RE)] if first.isdigit() else []) + list(resolvers)
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping_unique(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    first_line: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            seen = key in first_line
        except TypeError:  # unhashable key; construct_mapping reports it
            continue
        if seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"duplicate key {key!r} (first on line {first_line[key]})",
                key_node.start_mark,
            )
        first_line[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_RegistryLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping_unique,
)


def load_registry_file(path: str | Path) -> RegistryDocument:
    """Read and validate a registry YAML file; RegistryError on any problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RegistryError(source, [Problem("", "no such file")]) from exc
    except UnicodeDecodeError as exc:
        raise RegistryError(source, [Problem("", f"not UTF-8 text ({exc.reason})")]) from exc
    except OSError as exc:
        raise RegistryError(source, [Problem("", f"cannot read: {exc.strerror}")]) from exc
    return parse_registry(text, source)


def parse_registry(text: str, source: str = "<registry>") -> RegistryDocument:
    """Validate registry YAML text; `source` names it in error messages."""
    try:
        # Deep nesting and alias bombs are refused before anything is built.
        check_yaml_limits(text)
        data = yaml.load(text, Loader=_RegistryLoader)  # a SafeLoader subclass
    except YamlLimitError as exc:
        raise RegistryError(source, [Problem("", str(exc), exc.line, exc.column)]) from exc
    except yaml.YAMLError as exc:
        raise RegistryError(source, [_yaml_problem(exc)]) from exc
    except RecursionError as exc:  # a last resort: the limits above should come first
        raise RegistryError(source, [Problem("", "YAML nested too deeply")]) from exc
    if data is None:
        raise RegistryError(
            source, [Problem("", "the file is empty (write `sites: []` for no sites)")]
        )
    return validate_registry(data, source, text)


def validate_registry(
    data: Any, source: str = "<registry>", text: str | None = None
) -> RegistryDocument:
    """Validate already-parsed data (e.g. JSON from the API) as a RegistryDocument."""
    try:
        return RegistryDocument.model_validate(data)
    except ValidationError as exc:
        root = _compose(text) if text is not None else None
        problems = [_validation_problem(err, data, root) for err in exc.errors()]
        raise RegistryError(source, problems) from exc


def _yaml_problem(exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    kind = (
        "YAML error" if isinstance(exc, yaml.constructor.ConstructorError) else "YAML syntax error"
    )
    message = f"{kind}: {problem}" + (f" ({context})" if context else "")
    if mark is None:
        return Problem("", message)
    return Problem("", message, line=mark.line + 1, column=mark.column + 1)


_INNER_PATH = re.compile(r"^([a-z_]+)\[([^\]]+)\](?:\.([a-z_]+))? (.+)$")
_DUPLICATE = re.compile(r"^duplicate id '([^']+)' in ([a-z_]+)$")
_DEVICE_CLASH = re.compile(r"^device id '([^']+)' used by sites '([^']+)' and '([^']+)'$")
_BINDING_CLASH = re.compile(r"^vendor binding (.+) bound to both '([^']+)' and '([^']+)'$")
_Z2M_TOPIC = re.compile(r"^z2m (base topic|friendly name) .* of device '([^']+)' at site '([^']+)'")


def _validation_problem(err: Any, data: Any, root: yaml.Node | None) -> Problem:
    loc: tuple[Any, ...] = tuple(err["loc"])
    message: str = err["msg"].removeprefix("Value error, ")
    # The model's own checks name the inner path in their message; lift it into the
    # location, so the path and the line point at the offending item.
    if m := _INNER_PATH.match(message):
        loc = _item_loc(loc, data, m.group(1), m.group(2), m.group(3))
        message = m.group(4)
    elif m := _DUPLICATE.match(message):
        loc = _item_loc(loc, data, m.group(2), m.group(1), None)
        message = "duplicate id"
    elif loc == () and (m := _DEVICE_CLASH.match(message)):
        loc = _device_loc(data, m.group(3), m.group(1)) or loc
        message = f"device id {m.group(1)!r} is already used by site {m.group(2)!r}"
    elif loc == () and (m := _Z2M_TOPIC.match(message)):
        key = "base_topic" if m.group(1) == "base topic" else "friendly_name"
        found = _device_loc(data, m.group(3), m.group(2), "vendor")
        loc = (*found, "z2m", key) if found else loc
    elif loc == () and (m := _BINDING_CLASH.match(message)):
        loc = _device_loc(data, None, m.group(3), "vendor") or loc
        message = f"vendor binding {m.group(1)} is already bound to device {m.group(2)!r}"
    if err["type"] == "extra_forbidden":
        message = "unknown key (not part of the registry schema)"
    elif err["type"] == "string_type" and isinstance(err.get("input"), int | float):
        message += ' (quote numbers meant as text, e.g. phone: "13800000000")'
    elif loc == () and err["type"] == "model_type":
        message = "the top level must be a mapping with a `sites:` list"
    line = _line_of(root, loc) if root is not None else None
    return Problem(_render_path(loc, data).lstrip("."), message, line=line)


def _item_loc(
    loc: tuple[Any, ...], data: Any, collection: str, item_id: str, key: str | None
) -> tuple[Any, ...]:
    """loc + (collection, index of the (last) item with that id[, key]) in the raw data."""
    node: Any = data
    for part in loc:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    items = _as_list(node.get(collection) if isinstance(node, dict) else None)
    index = max(
        (i for i, it in enumerate(items) if isinstance(it, dict) and it.get("id") == item_id),
        default=None,
    )
    if index is None:
        return (*loc, collection)
    return (*loc, collection, index) + ((key,) if key else ())


def _device_loc(
    data: Any, site_id: str | None, device_id: str, last: str = "id"
) -> tuple[Any, ...] | None:
    """The location of a device in raw data (the last site holding it if site_id is None)."""
    found: tuple[Any, ...] | None = None
    for si, site in enumerate(_as_list(data.get("sites") if isinstance(data, dict) else None)):
        if not isinstance(site, dict) or (site_id is not None and site.get("id") != site_id):
            continue
        for di, device in enumerate(_as_list(site.get("devices"))):
            if isinstance(device, dict) and device.get("id") == device_id:
                found = ("sites", si, "devices", di, last)
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _render_path(loc: tuple[Any, ...], data: Any) -> str:
    """('sites', 0, 'devices', 2, 'kind') -> sites[hh-401].devices[bed-1].kind, using ids
    where the raw item has one, else the index."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            ident = item.get("id") if isinstance(item, dict) else None
            label = ident if isinstance(ident, str) and ident and "]" not in ident else part
            out += f"[{label}]"
            node = item
        else:
            out += f".{part}"
            node = node.get(part) if isinstance(node, dict) else None
    return out


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_RegistryLoader)  # a SafeLoader subclass
    except yaml.YAMLError:
        return None


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    node = root
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if hit is None:
                break
            line = hit[0].start_mark.line + 1
            node = hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


# --------------------------------------------------------------------------- planning

Key = str | tuple[str, str]
Row = dict[str, Any]


def site_row(site: Site, position: int) -> Row:
    return {
        "id": site.id,
        "kind": str(site.kind),
        "name": site.name,
        "organisation": site.organisation,
        "position": position,
        "data": site.model_dump(mode="json", exclude=set(SITE_CHILDREN)),
    }


def child_rows(site: Site) -> dict[str, dict[Key, Row]]:
    """The rows of a site's rooms, beds, residents, devices and contacts, keyed by primary key."""
    out: dict[str, dict[Key, Row]] = {kind: {} for kind in SITE_CHILDREN}
    for i, room in enumerate(site.rooms):
        out["rooms"][(site.id, room.id)] = {
            "site_id": site.id,
            "id": room.id,
            "kind": str(room.kind),
            "floor": room.floor,
            "position": i,
            "data": room.model_dump(mode="json"),
        }
    for i, bed in enumerate(site.beds):
        out["beds"][(site.id, bed.id)] = {
            "site_id": site.id,
            "id": bed.id,
            "room_id": bed.room,
            "position": i,
            "data": bed.model_dump(mode="json"),
        }
    for i, r in enumerate(site.residents):
        out["residents"][(site.id, r.id)] = {
            "site_id": site.id,
            "id": r.id,
            "name": r.name,
            "room_id": r.room,
            "bed_id": r.bed,
            "position": i,
            "data": r.model_dump(mode="json"),
        }
    out["devices"] = _device_rows(site)
    for i, c in enumerate(site.contacts):
        out["contacts"][(site.id, c.id)] = {
            "site_id": site.id,
            "id": c.id,
            "role": c.role,
            "language": c.language,
            "position": i,
            "data": c.model_dump(mode="json"),
        }
    return out


def _stored_row(row: Row) -> Row:
    return {k: v for k, v in row.items() if k != "updated_at"}


def _same(kind: str, stored: Row, wanted: Row) -> bool:
    if stored == wanted:
        return True
    # JSON written by an older model may lack fields added since (with defaults):
    # compare what it means today, not its bytes.
    try:
        if kind == "sites":
            site = Site.model_validate({**stored["data"], **{k: [] for k in SITE_CHILDREN}})
            again = site_row(site, stored["position"])
        else:
            model = CHILD_MODELS[kind].model_validate(stored["data"])
            again = _child_row_again(kind, stored, model)
    except ValidationError:
        return False
    return again == wanted


def _child_row_again(kind: str, stored: Row, model: Any) -> Row:
    shell = Site(id=stored["site_id"], kind="home", name="-", organisation="-")
    rebuilt = shell.model_copy(update={kind: [model]})
    row = next(iter(child_rows(rebuilt)[kind].values()))
    row["position"] = stored["position"]
    return row


def _display(kind: str, key: Key, row: Row) -> str:
    if kind == "sites":
        return str(key)
    return f"{row['site_id']}/{row['id']}"


@dataclass
class Plan:
    """The writes that make the store match; `result` says what they change."""

    result: ApplyResult = field(default_factory=ApplyResult)
    inserts: dict[str, list[Row]] = field(default_factory=lambda: {t: [] for t in ENTITY_TYPES})
    updates: dict[str, list[Row]] = field(default_factory=lambda: {t: [] for t in ENTITY_TYPES})
    deletes: dict[str, list[Row]] = field(default_factory=lambda: {t: [] for t in ENTITY_TYPES})
    bindings: list[Row] = field(default_factory=list)  # for created and updated devices

    def add(self, kind: str, action: str, row: Row, key: Key) -> None:
        changes = self.result.changes[kind]
        label = _display(kind, key, row) if kind != "org_units" else row["path"]
        if action == "create":
            self.inserts[kind].append(row)
            changes.created.append(label)
        elif action == "update":
            self.updates[kind].append(row)
            changes.updated.append(label)
        else:
            self.deletes[kind].append(row)
            changes.deleted.append(label)


def _binding_key(key: tuple[str, ...]) -> str:
    return json.dumps(list(key), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class StoredRegistry:
    """What the store holds that a plan compares against, read by `load_stored`."""

    sites: dict[str, Row]  # every stored site, by id
    children: dict[str, dict[Key, Row]]  # rooms … contacts of the sites in scope
    devices_with_wanted_ids: list[Row]  # stored devices whose id a wanted device uses
    bindings: list[tuple[str, str, str]]  # (key, device id, its site id) of wanted keys
    org_units: dict[Key, Row]  # the whole organisation tree, by path


def _full_scope(
    scope: set[str], wanted_sites: Sequence[tuple[int, Site]], stored: Iterable[str], prune: bool
) -> set[str]:
    """The sites an apply owns: those named, those wanted, and with `prune` every one."""
    scope = scope | {s.id for _, s in wanted_sites}
    return scope | set(stored) if prune else scope


async def load_stored(
    session: AsyncSession,
    wanted_sites: Sequence[tuple[int, Site]],
    scope: set[str],
    *,
    prune: bool = False,
) -> StoredRegistry:
    """Read only what the diff against `wanted_sites` needs (load)."""
    stored_sites = {r["id"]: r for r in await select_rows(session, SiteRow, SiteRow.id, None)}
    scope_list = sorted(_full_scope(scope, wanted_sites, stored_sites, prune) & set(stored_sites))
    stored_children: dict[str, dict[Key, Row]] = {}
    for kind, row_cls in CHILD_ROWS.items():
        found = await select_rows(session, row_cls, row_cls.site_id, scope_list)  # type: ignore[attr-defined]
        stored_children[kind] = {
            (r["id"] if kind == "devices" else (r["site_id"], r["id"])): _stored_row(r)
            for r in found
        }
    wanted_devices = {k: r for _, site in wanted_sites for k, r in _device_rows(site).items()}
    wanted_keys = sorted(
        _binding_key(k) for row in wanted_devices.values() for k in _row_vendor_keys(row)
    )
    bound: list[tuple[str, str, str]] = []  # (key, device id, its site id)
    for part in chunks(wanted_keys):
        query = (
            select(VendorBindingRow.key, VendorBindingRow.device_id, DeviceRow.site_id)
            .join(DeviceRow, DeviceRow.id == VendorBindingRow.device_id)
            .where(VendorBindingRow.key.in_(part))
        )
        bound.extend((k, d, s) for k, d, s in (await session.execute(query)).all())
    return StoredRegistry(
        sites=stored_sites,
        children=stored_children,
        devices_with_wanted_ids=await select_rows(
            session, DeviceRow, DeviceRow.id, sorted(wanted_devices)
        ),
        bindings=bound,
        org_units={
            r["path"]: _stored_row(r) for r in await select_rows(session, OrgUnitRow, None, None)
        },
    )


def _device_rows(site: Site) -> dict[Key, Row]:
    return {
        d.id: {
            "id": d.id,
            "site_id": site.id,
            "kind": str(d.kind),
            "room_id": d.room,
            "bed_id": d.bed,
            "resident_id": d.resident,
            "position": i,
            "data": d.model_dump(mode="json"),
        }
        for i, d in enumerate(site.devices)
    }


def plan_changes(
    stored: StoredRegistry,
    wanted_sites: Sequence[tuple[int, Site]],
    scope: set[str],
    source: str,
    *,
    prune: bool = False,
    renumber_sites: bool = False,
) -> Plan:
    """Diff `stored` against `wanted_sites` (plan): no I/O, so it is tested without a
    database. Every stored site in `scope` (all of them with `prune`) that is not
    wanted is deleted; ids or vendor identities another site holds refuse the apply
    (`RegistryError`)."""
    plan = Plan()
    stored_sites = stored.sites
    stored_children = stored.children
    scope = _full_scope(scope, wanted_sites, stored_sites, prune)

    wanted_children: dict[str, dict[Key, Row]] = {kind: {} for kind in SITE_CHILDREN}
    wanted_site_rows: dict[Key, Row] = {}
    for position, site in wanted_sites:
        wanted_site_rows[site.id] = site_row(site, position)
        for kind, rows in child_rows(site).items():
            found = [stored_children[kind].get(k) for k in rows]
            _keep_positions(
                list(rows.values()),
                [r["position"] if r and r["site_id"] == site.id else None for r in found],
            )
            wanted_children[kind].update(rows)
    if renumber_sites:
        _keep_positions(
            list(wanted_site_rows.values()),
            [
                stored_sites[str(k)]["position"] if k in stored_sites else None
                for k in wanted_site_rows
            ],
        )

    _check_store_conflicts(
        stored.devices_with_wanted_ids,
        stored.bindings,
        wanted_children["devices"],
        scope,
        source,
    )

    # Sites first, then each child type, in the document's order.
    stored_site_rows: dict[Key, Row] = {k: _stored_row(r) for k, r in stored_sites.items()}
    _diff(plan, "sites", stored_site_rows, wanted_site_rows, scope)
    for kind in SITE_CHILDREN:
        _diff(plan, kind, stored_children[kind], wanted_children[kind], scope)

    for row in plan.inserts["devices"] + plan.updates["devices"]:
        plan.bindings.extend(
            {"key": _binding_key(k), "vendor": k[0], "device_id": row["id"]}
            for k in _row_vendor_keys(row)
        )

    # The organisation tree: every prefix of every site's path after the apply.
    final_orgs = {k: r["organisation"] for k, r in stored_site_rows.items()}
    for row in plan.deletes["sites"]:
        final_orgs.pop(row["id"], None)
    final_orgs.update({str(k): r["organisation"] for k, r in wanted_site_rows.items()})
    wanted_units: dict[Key, Row] = {}
    for org in sorted(set(final_orgs.values())):
        for depth, path in enumerate(org_prefixes(org), start=1):
            parent = path.rpartition("/")[0] or None
            wanted_units[path] = {
                "path": path,
                "name": path.rpartition("/")[2],
                "parent_path": parent,
                "depth": depth,
            }
    stored_units = stored.org_units
    for unit, row in wanted_units.items():
        if unit not in stored_units:
            plan.add("org_units", "create", row, unit)
        elif stored_units[unit] != row:
            plan.add("org_units", "update", row, unit)
    for unit, row in stored_units.items():
        if unit not in wanted_units:
            plan.add("org_units", "delete", row, unit)
    return plan


def _keep_positions(rows: list[Row], stored: list[int | None]) -> None:
    """Give `rows` (in wanted order) positions that keep the stored ones where the order
    allows, so removing or appending an item does not rewrite its siblings; renumber
    0..n-1 only when the order itself changed."""
    # later_min[i]: the smallest stored position after item i (a new item must fit below it)
    later_min: list[float] = [float("inf")] * (len(stored) + 1)
    for i in range(len(stored) - 1, -1, -1):
        p = stored[i]
        later_min[i] = later_min[i + 1] if p is None else min(p, later_min[i + 1])
    out: list[int] = []
    last = -1
    for i, p in enumerate(stored):
        if p is not None and p > last:
            out.append(p)
        elif p is None and later_min[i + 1] > last + 1:
            out.append(last + 1)
        else:
            out = list(range(len(rows)))
            break
        last = out[-1]
    for row, position in zip(rows, out, strict=True):
        row["position"] = position


def _row_vendor_keys(row: Row) -> list[tuple[str, ...]]:
    return vendor_keys(Device.model_validate(row["data"]))


def _diff(
    plan: Plan, kind: str, stored: dict[Key, Row], wanted: dict[Key, Row], scope: set[str]
) -> None:
    for key, row in wanted.items():
        old = stored.get(key)
        if old is None:
            plan.add(kind, "create", row, key)
        elif not _same(kind, old, row):
            plan.add(kind, "update", row, key)
    for key, row in stored.items():
        owner = row["id"] if kind == "sites" else row["site_id"]
        if key not in wanted and owner in scope:
            plan.add(kind, "delete", row, key)


def _check_store_conflicts(
    existing_devices: Sequence[Row],
    existing_bindings: Sequence[tuple[str, str, str]],
    wanted_devices: dict[Key, Row],
    scope: set[str],
    source: str,
) -> None:
    """Device ids and vendor identities are unique across the whole store, including
    sites this apply does not touch."""
    problems: list[Problem] = []
    for d in existing_devices:
        if d["site_id"] in scope:
            continue
        row = wanted_devices[d["id"]]
        problems.append(
            Problem(
                f"sites[{row['site_id']}].devices[{d['id']}].id",
                f"device id {d['id']!r} is already used by site {d['site_id']!r} in the store",
            )
        )
    by_key = {key: (device_id, site_id) for key, device_id, site_id in existing_bindings}
    for row in wanted_devices.values():
        for key in _row_vendor_keys(row):
            holder, holder_site = by_key.get(_binding_key(key), (None, None))
            if holder is None or holder == row["id"] or holder_site in scope:
                continue  # free, already this device's, or held by a device being replaced
            problems.append(
                Problem(
                    f"sites[{row['site_id']}].devices[{row['id']}].vendor",
                    f"vendor binding {'/'.join(key)} is already bound to device {holder!r}"
                    " in the store",
                )
            )
    if problems:
        problems.sort(key=lambda p: p.path)
        raise RegistryError(source, problems)


# --------------------------------------------------------------------------- writing


async def _execute(session: AsyncSession, plan: Plan, version: int | None) -> int:
    """Write the plan in an order that keeps every constraint satisfied at every step."""
    now = datetime.now(UTC)

    def stamped(rows: Iterable[Row]) -> list[Row]:
        return [{**r, "updated_at": now} for r in rows]

    no_sync = {"synchronize_session": False}
    changed_devices = [r["id"] for r in plan.updates["devices"] + plan.deletes["devices"]]
    for part in chunks(changed_devices):
        await session.execute(
            delete(VendorBindingRow).where(VendorBindingRow.device_id.in_(part)),
            execution_options=no_sync,
        )
    for kind in reversed(SITE_CHILDREN):
        row_cls: Any = CHILD_ROWS[kind]
        rows = plan.deletes[kind]
        if kind == "devices":
            for part in chunks([r["id"] for r in rows]):
                await session.execute(
                    delete(row_cls).where(row_cls.id.in_(part)), execution_options=no_sync
                )
            continue
        by_site: dict[str, list[str]] = {}
        for r in rows:
            by_site.setdefault(r["site_id"], []).append(r["id"])
        for site_id, ids in by_site.items():
            for part in chunks(ids):
                await session.execute(
                    delete(row_cls).where(row_cls.site_id == site_id, row_cls.id.in_(part)),
                    execution_options=no_sync,
                )
    if plan.inserts["sites"]:
        await session.execute(insert(SiteRow), stamped(plan.inserts["sites"]))
    if plan.updates["sites"]:
        await session.execute(update(SiteRow), stamped(plan.updates["sites"]))
    for kind in SITE_CHILDREN:
        if plan.updates[kind]:
            await session.execute(update(CHILD_ROWS[kind]), stamped(plan.updates[kind]))
    for kind in SITE_CHILDREN:
        if plan.inserts[kind]:
            await session.execute(insert(CHILD_ROWS[kind]), stamped(plan.inserts[kind]))
    if plan.bindings:
        await session.execute(insert(VendorBindingRow), plan.bindings)
    for part in chunks([r["id"] for r in plan.deletes["sites"]]):
        await session.execute(
            delete(SiteRow).where(SiteRow.id.in_(part)), execution_options=no_sync
        )
    for part in chunks([r["path"] for r in plan.deletes["org_units"]]):
        await session.execute(
            delete(OrgUnitRow).where(OrgUnitRow.path.in_(part)), execution_options=no_sync
        )
    if plan.updates["org_units"]:
        await session.execute(update(OrgUnitRow), plan.updates["org_units"])
    if plan.inserts["org_units"]:
        await session.execute(insert(OrgUnitRow), plan.inserts["org_units"])

    return await bump_version(session, version)


async def _apply(
    sessions: Sessions,
    wanted: Sequence[tuple[int, Site]],
    scope: set[str],
    *,
    source: str,
    dry_run: bool,
    prune: bool = False,
    renumber_sites: bool = False,
) -> ApplyResult:
    async with sessions() as session, session.begin():
        version = await lock_version(session)
        stored = await load_stored(session, wanted, scope, prune=prune)
        plan = plan_changes(
            stored, wanted, scope, source, prune=prune, renumber_sites=renumber_sites
        )
        plan.result.dry_run = dry_run
        plan.result.version = version or 0
        if plan.result.total and not dry_run:
            plan.result.version = await _execute(session, plan, version)
    return plan.result


async def apply_document(
    sessions: Sessions,
    doc: RegistryDocument,
    *,
    prune: bool = False,
    dry_run: bool = False,
    source: str = "<document>",
    extra_validators: Sequence[RegistryValidator] = (),
) -> ApplyResult:
    """Make the store match `doc` for the sites it names; with `prune`, delete every other
    site. One transaction; nothing is written if nothing differs. `extra_validators` run
    first: any problem they report refuses the document."""
    run_validators(doc, extra_validators, source)
    return await _apply(
        sessions,
        list(enumerate(doc.sites)),
        set(),
        source=source,
        dry_run=dry_run,
        prune=prune,
        renumber_sites=True,
    )


async def apply_file(
    sessions: Sessions,
    path: str | Path,
    *,
    prune: bool = False,
    dry_run: bool = False,
    extra_validators: Sequence[RegistryValidator] = (),
) -> ApplyResult:
    """Validate a YAML file and apply it (RegistryError, and no change, if it is not valid)."""
    doc = load_registry_file(path)
    return await apply_document(
        sessions,
        doc,
        prune=prune,
        dry_run=dry_run,
        source=str(path),
        extra_validators=extra_validators,
    )


async def upsert_site(
    sessions: Sessions, site: Site, *, extra_validators: Sequence[RegistryValidator] = ()
) -> ApplyResult:
    """Create one site or replace everything in it; other sites are untouched.
    `extra_validators` see a document of this one site; any problem refuses it."""
    source = f"site {site.id}"
    try:
        doc = RegistryDocument(sites=[site])  # vendor bindings unique within the site
    except ValidationError as exc:
        raise RegistryError(
            source,
            [_validation_problem(e, {"sites": [site.model_dump()]}, None) for e in exc.errors()],
        ) from exc
    run_validators(doc, extra_validators, source)
    async with sessions() as session:
        positions = (await session.execute(select(SiteRow.id, SiteRow.position))).all()
    existing = {sid: pos for sid, pos in positions}
    position = existing.get(site.id, max(existing.values(), default=-1) + 1)
    return await _apply(sessions, [(position, site)], {site.id}, source=source, dry_run=False)


async def delete_site(sessions: Sessions, site_id: str) -> bool:
    """Delete one site with its rooms, beds, residents, devices and contacts."""
    result = await _apply(sessions, [], {site_id}, source=f"site {site_id}", dry_run=False)
    return bool(result.changes["sites"].deleted)


# --------------------------------------------------------------------------- export


def dump_registry(doc: RegistryDocument) -> str:
    """The registry as YAML that `parse_registry` reads back to an equal document.

    Defaults are left out to keep the file short; clock times and numeric-looking
    strings come out quoted, so they read back as text.
    """
    data = doc.model_dump(mode="json", exclude_defaults=True)
    data.setdefault("sites", [])
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
