"""Two gateway processes' worth of the gateway role on one store: an alert the active
pipeline writes reaches the live stream of both (woken over NATS)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable

import httpx

from cluster.publishers import JetStreamTransitions
from eldercare import registry_store
from eldercare.db import create_engine, session_factory
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from eldercare_app.cluster_roles import ActivePipeline, RoleProcess, build_role
from eldercare_app.local_services import NatsCluster
from eldercare_app.wiring import prepare_store
from gateway.users import Role, create_user
from tests.helpers.cluster import SseReader, wipe
from tests.helpers.gateway import PASSWORD, REGISTRY, free_port, sos
from tests.helpers.polling import wait_for


async def test_every_gateway_receives_the_live_stream(
    settings: Settings, nats_cluster: NatsCluster, pg_database: Callable[[str], str]
) -> None:
    await wipe(nats_cluster.url)
    settings = settings.model_copy(
        update={
            "nats_url": nats_cluster.url,
            "cluster_replicas": 3,
            "cluster_lease_ttl_s": 1.5,
            "database_url": pg_database("gateways"),
        }
    )
    engine = create_engine(settings.database_url)
    await prepare_store(engine)
    sessions = session_factory(engine)
    await registry_store.apply_document(sessions, RegistryDocument.model_validate(REGISTRY))
    await create_user(
        sessions, username="admin1", role=Role.ADMIN, password=PASSWORD, now=time.time()
    )
    await engine.dispose()

    processes: list[RoleProcess] = []
    ports = [free_port(), free_port()]
    try:
        for port in ports:
            gw = await build_role("gateway", settings.model_copy(update={"http_port": port}))
            await gw.start()
            processes.append(gw)
        pipeline = await build_role("pipeline", settings)
        await pipeline.start()
        processes.append(pipeline)
        async with contextlib.AsyncExitStack() as stack:
            readers = []
            for port in ports:
                client = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
                )
                resp = await client.post(
                    "/api/auth/login",
                    json={"username": "admin1", "password": PASSWORD, "token_kind": "bearer"},
                )
                assert resp.status_code == 200, resp.text
                headers = {"Authorization": f"Bearer {resp.json()['token']}"}
                stream = await stack.enter_async_context(
                    client.stream("GET", "/api/stream", headers=headers)
                )
                reader = SseReader(stream.aiter_lines())
                await reader.next_of("hello", 5)
                readers.append(reader)
            [role] = pipeline.components
            assert isinstance(role, ActivePipeline)
            await wait_for(lambda: role.active, 10, "the pipeline active")
            sink = JetStreamTransitions(pipeline.stream.js, settings.cluster_partitions)
            await sink.handle_transitions([sos("hh-401", "zhang-xiuying", time.time())])
            for reader in readers:
                event = await reader.next_of("alert", 10)
                alert = json.loads(event["data"])["alert"]
                assert alert["site_id"] == "hh-401"
                assert alert["kind"] == "sos"
    finally:
        for process in reversed(processes):
            with contextlib.suppress(Exception):
                await process.stop()
