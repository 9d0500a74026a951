"""`eldercare alerts bench`: how long N alerts raised at once take to be stored,
routed (escalation step 0) and delivered to a local HTTP receiver via Apprise.

Runs on a throwaway SQLite file unless `--database-url` names another store (then
it uses that database's tables; run it against an empty one).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from alerts.pipeline import AlertPipeline
from alerts.policy import EscalationPolicy, PolicySet, load_policy
from alerts.sender import AppriseSender
from alerts.store import AlertStore, init_store
from eldercare.clock import FakeClock
from eldercare.db import create_engine
from eldercare.domain import AlertKind, Evidence, Severity, Transition, TransitionAction
from eldercare.logs import configure_logging
from eldercare.registry_index import RegistryIndex
from eldercare_app.webhook_receiver import WebhookReceiver


async def run_bench(
    n: int, database_url: str | None = None, concurrency: int = 8
) -> dict[str, Any]:
    inbox = WebhookReceiver().__enter__()
    tmp = tempfile.TemporaryDirectory()
    url = database_url or f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.db'}"
    engine = create_engine(url)
    sender = AppriseSender()
    try:
        await init_store(engine)
        doc = load_policy().model_dump(mode="json")
        doc["centre"]["apprise"] = [f"{inbox.url}/centre"]
        doc["delivery"]["per_channel_concurrency"] = concurrency
        policies = PolicySet(EscalationPolicy.model_validate(doc))
        clock = FakeClock(time.time())
        pipeline = AlertPipeline(
            AlertStore(engine),
            RegistryIndex.empty,
            clock,
            public_url="http://127.0.0.1",
            policies=policies,
            sender=sender,
        )
        now = clock.now()
        batch = [
            Transition(
                TransitionAction.RAISE,
                AlertKind.SOS,
                f"bench-{i:06d}",
                now,
                Severity.CRITICAL,
                resident_id=f"r-{i}",
                evidence=(Evidence(now, "sos", "sos", "button pressed"),),
            )
            for i in range(n)
        ]
        t0 = time.perf_counter()
        await pipeline.handle_transitions(batch)
        t1 = time.perf_counter()
        escalated = await pipeline.escalate_due(clock.now())
        t2 = time.perf_counter()
        await pipeline.deliver_due(clock.now())
        t3 = time.perf_counter()
        return {
            "alerts": n,
            "database": url.split("://")[0],
            "store_s": round(t1 - t0, 3),
            "route_s": round(t2 - t1, 3),
            "deliver_s": round(t3 - t2, 3),
            "total_s": round(t3 - t0, 3),
            "escalated": escalated,
            "delivered": len(inbox.arrivals),
            "sent_logged": pipeline.counters["sent"],
            "alerts_per_s": round(n / (t3 - t0), 1),
        }
    finally:
        sender.close()
        await engine.dispose()
        inbox.__exit__()
        tmp.cleanup()


def bench_command(
    alerts: Annotated[int, typer.Option("--alerts", help="alerts raised at once")] = 1000,
    database_url: Annotated[
        str | None, typer.Option(help="store to use (default: a throwaway SQLite file)")
    ] = None,
) -> None:
    """Time storing, routing and delivering N alerts raised at once (local receiver)."""
    configure_logging("WARNING")
    typer.echo(json.dumps(asyncio.run(run_bench(alerts, database_url)), indent=2))
