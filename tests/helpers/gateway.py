"""Shared building blocks of the gateway tests: a real SQLite store with a registry,
accounts of every role, the real alert store and service, and the app around them.

`build_gateway` is the one place the app is constructed, so the end-to-end test
can later swap in `eldercare run`'s wiring by changing only that function.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

import alerts.models  # noqa: F401  (registers the alert tables)
from alerts.service import AlertService
from alerts.store import AlertStore
from eldercare import registry_store
from eldercare.clock import Clock
from eldercare.db import Base, create_engine, session_factory
from eldercare.domain import AlertKind, Evidence, Severity, Transition, TransitionAction
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from eldercare.registry_store import Sessions
from eldercare.settings import Settings
from gateway.alert_adapter import PipelineAlertService
from gateway.app import create_app
from gateway.context import CachedStoreIndex
from gateway.ports import InfluxQuery
from gateway.users import Role, create_user, set_password_hasher

# Still argon2, with cheap parameters: tests check behaviour, not key-stretching strength.
set_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))

PASSWORD = "correct-horse-battery"
BINCHENG = "滨州市/滨城区"
ZHANHUA = "滨州市/沾化区"

REGISTRY = {
    "sites": [
        {
            "id": "hh-401",
            "kind": "home",
            "name": "张秀英家",
            "organisation": f"{BINCHENG}/市中街道/黄河社区",
            "address": "黄河社区 3-2-401",
            "latitude": 37.38,
            "longitude": 117.97,
            "rooms": [
                {"id": "bedroom", "kind": "bedroom", "name": "卧室"},
                {"id": "kitchen", "kind": "kitchen", "name": "厨房"},
                {"id": "bathroom", "kind": "bathroom", "name": "卫生间"},
                {"id": "entrance", "kind": "entrance", "name": "门厅"},
            ],
            "residents": [
                {
                    "id": "zhang-xiuying",
                    "name": "张秀英",
                    "birth_year": 1941,
                    "room": "bedroom",
                    "flags": ["dementia", "hypertension"],
                    "phone": "13800000001",
                }
            ],
            "devices": [
                {"id": "hh401-bed", "kind": "bed", "room": "bedroom"},
                {"id": "hh401-pir-k", "kind": "motion", "room": "kitchen"},
                {"id": "hh401-pir-b", "kind": "motion", "room": "bathroom"},
                {"id": "hh401-pir-bed", "kind": "motion", "room": "bedroom"},
                {"id": "hh401-door", "kind": "door", "room": "entrance", "outer_door": True},
                {"id": "hh401-sos", "kind": "sos_button", "room": "bedroom"},
            ],
            "contacts": [
                {
                    "id": "daughter",
                    "name": "李梅",
                    "role": "family",
                    "phone": "13900000002",
                    "residents": ["zhang-xiuying"],
                    "order": 0,
                },
                {
                    "id": "neighbour",
                    "name": "王阿姨",
                    "role": "neighbour",
                    "phone": "13700000003",
                    "order": 1,
                },
            ],
        },
        {
            "id": "zh-12",
            "kind": "home",
            "name": "刘建国家",
            "organisation": f"{ZHANHUA}/富源街道/新城社区",
            "address": "新城社区 12-1-101",
            "rooms": [{"id": "bedroom", "kind": "bedroom", "name": "卧室"}],
            "residents": [{"id": "liu-jianguo", "name": "刘建国", "birth_year": 1938}],
            "devices": [{"id": "zh12-sos", "kind": "sos_button", "room": "bedroom"}],
            "contacts": [
                {"id": "son", "name": "刘强", "phone": "13600000004", "residents": ["liu-jianguo"]}
            ],
        },
        {
            "id": "yiyang",
            "kind": "institution",
            "name": "颐养院",
            "organisation": f"{BINCHENG}/颐养院",
            "rooms": [
                {"id": "r301", "kind": "bedroom", "name": "301", "floor": "3F"},
                {"id": "r302", "kind": "bedroom", "name": "302", "floor": "3F"},
            ],
            "beds": [
                {"id": "b301-1", "room": "r301", "name": "301-1"},
                {"id": "b301-2", "room": "r301", "name": "301-2"},
                {"id": "b302-1", "room": "r302", "name": "302-1"},
            ],
            "residents": [
                {"id": "sun-lan", "name": "孙兰", "birth_year": 1935, "bed": "b301-1"},
                {"id": "zhao-hua", "name": "赵华", "birth_year": 1940, "bed": "b302-1"},
            ],
            "devices": [
                {"id": "yy-bed-301-1", "kind": "bed", "bed": "b301-1", "resident": "sun-lan"},
                {"id": "yy-bed-302-1", "kind": "bed", "bed": "b302-1", "resident": "zhao-hua"},
            ],
        },
    ]
}


@dataclass
class Gateway:
    app: FastAPI
    sessions: Sessions
    store: AlertStore
    service: AlertService
    index: CachedStoreIndex
    engine: AsyncEngine


def current_index(provider: CachedStoreIndex) -> RegistryIndex:
    # The alert service wants a synchronous snapshot; the gateway's provider caches one.
    return provider._index or RegistryIndex.empty()


async def build_gateway(
    settings: Settings,
    clock: Clock,
    influx: InfluxQuery | None = None,
    hub_poll_s: float = 0.1,
    with_accounts: bool = True,
    registry: Mapping[str, Any] | None = None,
) -> Gateway:
    await _prepare_database(settings.database_url, registry or REGISTRY, with_accounts, clock)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    index = CachedStoreIndex(sessions, check_every_s=0.0)
    await index.refresh()
    store = AlertStore(engine)
    service = AlertService(store, clock, lambda: current_index(index), public_url="http://x")
    app = create_app(
        settings,
        sessions=sessions,
        index_provider=index,
        alert_service=PipelineAlertService(service),
        influx=influx,
        clock=clock,
        hub_poll_s=hub_poll_s,
    )
    return Gateway(app, sessions, store, service, index, engine)


# Creating the tables, applying the registry and hashing the accounts' passwords cost
# about 0.1 s a test; a new SQLite file is instead a copy of one built the same way once
# per process for the same registry, accounts and clock time.
_TEMPLATES: dict[str, Path] = {}
_TEMPLATE_DIR = Path(tempfile.mkdtemp(prefix="gateway-db-templates-"))
atexit.register(shutil.rmtree, _TEMPLATE_DIR, True)


async def _prepare_database(
    url: str, registry: Mapping[str, Any], with_accounts: bool, clock: Clock
) -> None:
    target = _new_sqlite_file(url)
    if target is None:  # another database, or a file a test prepared: fill it in place
        await _fill_database(url, registry, with_accounts, clock.now())
        return
    key = json.dumps([registry, with_accounts, clock.now()], sort_keys=True, default=str)
    template = _TEMPLATES.get(key)
    if template is None:
        template = _TEMPLATE_DIR / f"{len(_TEMPLATES)}.db"
        await _fill_database(
            f"sqlite+aiosqlite:///{template}", registry, with_accounts, clock.now()
        )
        _TEMPLATES[key] = template
    target.parent.mkdir(parents=True, exist_ok=True)  # as the engine would make it
    shutil.copyfile(template, target)


def _new_sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    path = Path(parsed.database)
    return None if parsed.database == ":memory:" or path.exists() else path


async def _fill_database(
    url: str, registry: Mapping[str, Any], with_accounts: bool, now: float
) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sessions = session_factory(engine)
    await registry_store.apply_document(sessions, RegistryDocument.model_validate(registry))
    accounts = [
        ("admin1", Role.ADMIN, None, None),
        ("op-bincheng", Role.OPERATOR, BINCHENG, None),
        ("op-zhanhua", Role.OPERATOR, ZHANHUA, None),
        ("sup-bincheng", Role.SUPERVISOR, BINCHENG, None),
        ("family-zhang", Role.FAMILY, None, ["hh-401/zhang-xiuying"]),
    ]
    for username, role, scope, residents in accounts if with_accounts else []:
        await create_user(
            sessions,
            username=username,
            role=role,
            password=PASSWORD,
            now=now,
            scope=scope,
            residents=residents,
            display_name=username,
        )
    await engine.dispose()


def sos(site: str, resident: str | None, ts: float, room: str = "bedroom") -> Transition:
    return Transition(
        action=TransitionAction.RAISE,
        kind=AlertKind.SOS,
        site_id=site,
        ts=ts,
        severity=Severity.CRITICAL,
        resident_id=resident,
        room_id=room,
        device_id=f"{site}-sos",
        evidence=(Evidence(ts, f"{site}-sos", "sos", "SOS button pressed", room),),
    )


async def login(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    resp = await client.post(
        "/api/auth/login",
        json={"username": username, "password": PASSWORD, "token_kind": "bearer"},
    )
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/gateway.db"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def in_process_client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in process (lifespan run), the engine disposed
    at the end: what the API tests' `gw` fixtures yield beside the gateway."""
    transport = httpx.ASGITransport(app=gateway.app)
    try:
        async with (
            gateway.app.router.lifespan_context(gateway.app),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        ):
            yield client
    finally:
        await gateway.engine.dispose()


@asynccontextmanager
async def serve(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """Run the app under a real uvicorn on a free loopback port; yield its base URL."""
    import asyncio

    import uvicorn

    port = port or free_port()
    # Open SSE streams never finish by themselves: uvicorn cancels them after this grace.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
