"""Building the alert pipeline for a process (`eldercare run`, or alerts alone).

    pipeline, service = await build_alerts(settings, index_provider)
    await pipeline.start()          # ticks every second on the wall clock
    await sink.handle_transitions(...)   # pipeline is the TransitionSink
    ...
    await close_alerts(pipeline)    # stops the loop, the InfluxDB client and the engine

The store is `settings.database_url`; alert events go to InfluxDB
(`settings.influx_*`); family daily summaries read facts from the same InfluxDB.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.daily_summary import DailySummaries, InfluxDayFacts
from alerts.events import OUTBOX_DIR, InfluxAlertEventRecorder
from alerts.limits import load_limits
from alerts.pipeline import AlertPipeline
from alerts.policy import PolicySet, load_inhibit_rules
from alerts.recipients import ContactPreferences
from alerts.service import AlertService
from alerts.store import AlertStore, init_store
from alerts.store_availability import AlertStoreAvailability
from eldercare.clock import Clock, WallClock
from eldercare.db import create_engine
from eldercare.influx import InfluxClient
from eldercare.registry_index import RegistryIndex
from eldercare.settings import Settings


async def build_alerts(
    settings: Settings,
    index_provider: Callable[[], RegistryIndex],
    *,
    clock: Clock | None = None,
    engine: AsyncEngine | None = None,
    policies_dir: Path | None = None,
    preferences: ContactPreferences | None = None,
    availability: AlertStoreAvailability | None = None,
) -> tuple[AlertPipeline, AlertService]:
    """The pipeline (TransitionSink + Component) and the service (for the gateway),
    sharing one store so the gateway's live stream wakes on the pipeline's writes.
    `availability` tracks the store's writability (e.g. reporting to process health)."""
    clock = clock or WallClock()
    engine = engine or create_engine(settings.database_url)
    await init_store(engine)
    store = AlertStore(engine)
    policies = PolicySet.load(overrides_dir=policies_dir)
    influx = InfluxClient.from_settings(settings)

    def org_of(site_id: str) -> str | None:
        site = index_provider().sites.get(site_id)
        return site.organisation if site else None

    recorder = InfluxAlertEventRecorder(
        influx, settings.influx_db, org_of, outbox=settings.run_dir / OUTBOX_DIR
    )
    summaries = DailySummaries(
        store,
        index_provider,
        InfluxDayFacts(influx, settings.influx_db),
        settings.public_url,
        preferences=preferences,
    )
    pipeline = AlertPipeline(
        store,
        index_provider,
        clock,
        public_url=settings.public_url,
        policies=policies,
        inhibit_rules=load_inhibit_rules(),
        recorder=recorder,
        daily_summaries=summaries,
        preferences=preferences,
        availability=availability,
        limits=load_limits(policies_dir),
    )
    pipeline.resources = [influx]
    service = AlertService(
        store,
        clock,
        index_provider,
        public_url=settings.public_url,
        policies=policies,
        recorder=recorder,
    )
    return pipeline, service


async def close_alerts(pipeline: AlertPipeline) -> None:
    await pipeline.stop()
    if isinstance(pipeline.recorder, InfluxAlertEventRecorder):
        await pipeline.recorder.flush()
        await pipeline.recorder.hand_over()  # what InfluxDB did not take, for the next run
    for resource in pipeline.resources:
        await resource.aclose()
    await pipeline.store.engine.dispose()
