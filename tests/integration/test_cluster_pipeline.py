"""The pipeline role on a real NATS cluster: one active instance by lease, a standby
that takes over when the active one dies, with no duplicate notification and no missed
escalation step (PostgreSQL, the cluster's store)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from alerts.pipeline import AlertPipeline
from alerts.runtime import build_alerts
from cluster.jetstream import JetStream, open_jetstream
from cluster.publishers import JetStreamTransitions
from eldercare.clock import FakeClock
from eldercare.db import create_engine
from eldercare.domain import AlertKind
from eldercare.settings import Settings
from eldercare_app.cluster_roles import ActivePipeline
from eldercare_app.local_services import NatsCluster
from eldercare_app.wiring import prepare_store
from tests.helpers.alerts import HttpReceiver, registry, transition
from tests.helpers.cluster import wipe
from tests.helpers.polling import wait_for

TTL = 1.5


def die(p: ActivePipeline) -> None:
    """What kill -9 leaves: the lease unreleased, the fetched batch unacknowledged."""
    loops = [p._turns]
    if p.pipeline is not None:
        loops += [p.pipeline._timers, p.pipeline._record_retry]
    tasks = [p._consume_task, *(loop._task for loop in loops if loop is not None)]
    for task in tasks:
        if task is not None:
            task.cancel()


async def test_standby_takes_over_without_duplicate_or_missed_notification(
    settings: Settings,
    tmp_path: Path,
    http_receiver: HttpReceiver,
    nats_cluster: NatsCluster,
    pg_database: Callable[[str], str],
) -> None:
    rx = http_receiver
    await wipe(nats_cluster.url)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "hh-3-2-401.yaml").write_text(
        f"centre: {{apprise: ['{rx.url('centre')}'], phone: '0543-1234567'}}\n", encoding="utf-8"
    )
    index = registry([rx.url("daughter")])
    settings = settings.model_copy(
        update={
            "nats_url": nats_cluster.url,
            "cluster_replicas": 3,
            "cluster_lease_ttl_s": TTL,
            "database_url": pg_database("pipeline"),
            "alert_policies_dir": policies,
        }
    )
    engine = create_engine(settings.database_url)
    await prepare_store(engine)
    clock = FakeClock(time.time())

    def builder(own: list[AlertPipeline]) -> Callable[[], Awaitable[AlertPipeline]]:
        async def build() -> AlertPipeline:
            pipeline, _ = await build_alerts(
                settings, lambda: index, clock=clock, engine=engine, policies_dir=policies
            )
            own.append(pipeline)
            return pipeline

        return build

    streams: list[JetStream] = []
    roles: list[ActivePipeline] = []
    try:
        for name in ("pipeline-a", "pipeline-b"):
            stream = await open_jetstream(settings, name=name)
            streams.append(stream)
            role = ActivePipeline(settings, stream, builder([]), name)
            await role.start()
            roles.append(role)
        a, b = roles
        assert a.active and not b.active, "one active instance, one standby"

        sink = JetStreamTransitions(streams[0].js, settings.cluster_partitions)
        await sink.handle_transitions([transition(AlertKind.SOS, clock.now())])
        await wait_for(lambda: len(rx.to("centre")) == 1, 20, "the centre notified at once")

        die(a)
        clock.advance(61)  # the family's step falls due while no pipeline runs
        start = time.monotonic()
        await wait_for(lambda: b.active, TTL * 6, "the standby takes over")
        assert time.monotonic() - start <= TTL * 6
        await wait_for(lambda: len(rx.to("daughter")) == 1, 20, "the family's step sent")
        assert b.pipeline is not None
        for _ in range(3):  # more turns of escalation: nothing due is sent again
            await b.pipeline.tick()
        assert len(rx.to("centre")) == 1, "no duplicate notification of the centre"
        assert len(rx.to("daughter")) == 1, "no duplicate notification of the family"
    finally:
        for role in roles:
            with contextlib.suppress(Exception):
                await role.stop()
        for stream in streams:
            if stream is streams[0]:
                # `a`'s, killed by `die`: a killed process does not drain its connection
                # (draining its cancelled fetch waits out nats' 30 s drain timeout).
                await stream.nc.close()
            else:
                await stream.close()
        await engine.dispose()


async def test_a_slow_activation_keeps_the_lease_renewed(
    settings: Settings,
    nats_cluster: NatsCluster,
    pg_database: Callable[[str], str],
) -> None:
    """Building and starting the pipeline can outlast the lease's TTL on a loaded machine
    (seen at 20,000 homes on 2 cores): the lease must be renewed meanwhile, or a standby
    takes it and the two instances churn it between them."""
    await wipe(nats_cluster.url)
    settings = settings.model_copy(
        update={
            "nats_url": nats_cluster.url,
            "cluster_replicas": 3,
            "cluster_lease_ttl_s": TTL,
            "database_url": pg_database("slow_activation"),
        }
    )
    engine = create_engine(settings.database_url)
    await prepare_store(engine)
    go_on = asyncio.Event()
    index = registry([])

    async def slow_build() -> AlertPipeline:
        await go_on.wait()  # held until the test has seen several TTLs pass
        pipeline, _ = await build_alerts(settings, lambda: index, engine=engine)
        return pipeline

    async def build() -> AlertPipeline:
        pipeline, _ = await build_alerts(settings, lambda: index, engine=engine)
        return pipeline

    streams = [await open_jetstream(settings, name=n) for n in ("slow", "standby")]
    slow = ActivePipeline(settings, streams[0], slow_build, "pipeline-slow")
    standby = ActivePipeline(settings, streams[1], build, "pipeline-standby")
    starting = asyncio.create_task(slow.start())
    try:
        await wait_for(lambda: slow._activation is not None, 10, "the lease taken")
        await standby.start()
        assert standby._turns is not None
        # Six standby turns (a third of a TTL each): two TTLs in which it would have
        # taken a lease left to expire.
        await wait_for(
            lambda: standby._turns is not None and standby._turns.ticks >= 6, 20, "turns"
        )
        assert not standby.active, "the lease was renewed while the activation ran"
        go_on.set()
        await asyncio.wait_for(starting, 30)
        assert slow.active and not standby.active
    finally:
        go_on.set()
        for role in (standby, slow):
            with contextlib.suppress(Exception):
                await role.stop()
        for stream in streams:
            await stream.close()
        await engine.dispose()
