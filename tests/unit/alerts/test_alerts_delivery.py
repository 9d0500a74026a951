"""Delivery reliability: restarts without duplicates, retries, unanswered steps,
one channel's outage, a thousand alerts at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alerts.policy import EscalationPolicy, PolicySet
from alerts.store import AlertFilter, AlertStore, init_store
from eldercare.clock import FakeClock
from eldercare.db import create_engine
from eldercare.domain import AlertKind
from tests.helpers.alerts import (
    RESIDENT,
    T0,
    HttpReceiver,
    free_port,
    make_pipeline,
    policies,
    registry,
    sqlite_url,
    transition,
)


async def test_restart_mid_escalation_resumes_without_duplicates(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    index = registry([rx.url("daughter")], [rx.url("son")], [rx.url("super")])
    policy_set = policies([rx.url("centre")])

    engine1 = create_engine(sqlite_url(tmp_path))
    await init_store(engine1)
    first, _ = make_pipeline(AlertStore(engine1), index, clock, policy_set)
    await first.handle_transitions(
        [transition(AlertKind.SOS, T0), transition(AlertKind.LOW_BATTERY, T0, resident=None)]
    )
    await first.tick()
    assert len(rx.to("centre")) == 2
    # The process dies after the family step was decided (pending rows written) but
    # before anything was sent.
    clock.set(T0 + 60)
    assert await first.escalate_due(clock.now()) == 1
    await engine1.dispose()
    assert rx.to("daughter") == []

    engine2 = create_engine(sqlite_url(tmp_path))
    second, service = make_pipeline(AlertStore(engine2), index, clock, policy_set)
    clock.set(T0 + 61)
    await second.tick()
    await second.tick()
    assert len(rx.to("centre")) == 2
    assert len(rx.to("daughter")) == 1 and len(rx.to("son")) == 1 and len(rx.to("super")) == 1
    log = await second.store.notifications()
    assert all(n.state == "sent" for n in log)
    assert len({n.idempotency_key for n in log}) == len(log) == 2 + 3

    # And the timers carry on from the stored state: the repeat is due at +180.
    clock.set(T0 + 179)
    await second.tick()
    assert len(rx.to("daughter")) == 1
    clock.set(T0 + 180)
    await second.tick()
    assert len(rx.to("daughter")) == 2
    await service.acknowledge(1, by="op")
    await engine2.dispose()


def _three_step_policy(centre_urls: list[str]) -> PolicySet:
    base = policies(centre_urls, backoff_s=5, max_attempts=3).default.model_dump(mode="json")
    base["severities"]["critical"] = {
        "steps": [
            {"notify": ["centre"], "wait_s": 60},
            {"notify": ["family#1"], "wait_s": 300},
            {"notify": ["family#2", "supervisor"], "wait_s": 60},
        ]
    }
    return PolicySet(EscalationPolicy.model_validate(base))


async def test_down_receiver_is_retried_then_escalation_moves_on(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    dead = f"json://127.0.0.1:{free_port()}/daughter"  # nobody listens there
    clock = FakeClock(T0)
    index = registry([dead], [rx.url("son")], [rx.url("super")])
    pipeline, service = make_pipeline(store, index, clock, _three_step_policy([rx.url("centre")]))

    await pipeline.handle_transitions([transition(AlertKind.FALL, T0)])
    await pipeline.tick()
    clock.set(T0 + 60)
    await pipeline.tick()  # family#1 = the daughter: attempt 1 fails
    [n] = [n for n in await store.notifications() if n.recipient == "family:daughter"]
    assert n.state == "pending" and n.attempts == 1 and n.next_attempt_at == T0 + 65
    assert rx.to("son") == []

    clock.set(T0 + 64)
    await pipeline.tick()
    assert (await store.notifications(1))[1].attempts == 1  # backoff: not yet
    clock.set(T0 + 65)
    await pipeline.tick()  # attempt 2 fails; next in 10 s
    clock.set(T0 + 75)
    await pipeline.tick()  # attempt 3 fails: unanswered, the next step is due now
    [n] = [n for n in await store.notifications() if n.recipient == "family:daughter"]
    assert n.state == "failed" and n.attempts == 3 and n.last_error
    assert rx.to("son") == []
    clock.set(T0 + 76)
    await pipeline.tick()
    assert len(rx.to("son")) == 1 and len(rx.to("super")) == 1  # not waiting until +360

    detail = await service.get_alert(1)
    assert detail is not None
    actions = [h.action for h in detail.history]
    assert "notification_failed" in actions and "unanswered" in actions


async def test_failing_channel_recovers_on_retry(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    index = registry([rx.url("daughter")])
    pipeline, _ = make_pipeline(store, index, clock, policies([rx.url("centre")]))
    rx.status = 503
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
    await pipeline.tick()
    assert len(rx.to("centre")) == 1  # it arrived, but the receiver answered 503
    rx.status = 200
    clock.set(T0 + 5)
    await pipeline.tick()
    [n] = await store.notifications(1)
    assert n.state == "sent" and n.attempts == 2
    assert len(rx.to("centre")) == 2


async def test_one_channel_outage_does_not_delay_another(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    """A receiver that accepts the connection and never answers holds its own send
    until the timeout; the other channels are delivered meanwhile."""
    import asyncio
    import socket

    rx = http_receiver
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections (backlog), never answers
    hung = f"json://127.0.0.1:{silent.getsockname()[1]}/hung"
    clock = FakeClock(T0)
    index = registry([rx.url("daughter")])
    pipeline, _ = make_pipeline(
        store, index, clock, policies([hung, rx.url("centre")], timeout_s=3)
    )
    try:
        await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
        await pipeline.tick(wait=False)
        for _ in range(200):  # well under the 3 s timeout of the hung channel
            if rx.to("centre"):
                break
            await asyncio.sleep(0.01)
        assert len(rx.to("centre")) == 1
        await pipeline.settle()
        states = {n.recipient + n.channel_hash: n for n in await store.notifications(1)}
        failed = [n for n in states.values() if n.state != "sent"]
        assert len(failed) == 1 and "3 s" in (failed[0].last_error or "")
    finally:
        silent.close()


async def test_thousand_alerts_at_once_are_stored_and_routed(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    index = registry([rx.url("daughter")])
    pipeline, service = make_pipeline(
        store, index, clock, policies([rx.url("centre")], per_channel_concurrency=8)
    )
    batch = [
        transition(AlertKind.SOS, T0 + i * 0.001, site=f"site-{i:04d}", resident=f"r-{i}")
        for i in range(1000)
    ]
    await pipeline.handle_transitions(batch)
    assert len(await service.list_alerts(AlertFilter(limit=5000))) == 1000
    report = await pipeline.tick()
    assert report.escalated == 1000 and report.sends_started == 1000
    log = await store.notifications()
    assert len(log) == 1000 and all(n.state == "sent" for n in log)
    assert len(rx.to("centre")) == 1000
    assert {r.doc["message"].split("）")[0] for r in rx.to("centre")} >= {"【紧急】r-0（site-0000"}
    assert RESIDENT not in {a.resident for a in await service.list_alerts(AlertFilter(limit=5))}


async def test_bench_command_measures_a_real_run() -> None:
    from benchmarks.alert_delivery import run_bench

    figures = await run_bench(25)
    assert figures["escalated"] == 25 and figures["delivered"] == 25
    assert figures["sent_logged"] == 25 and figures["total_s"] > 0


async def test_alert_stored_before_a_stage_failed_still_escalates(
    store: AlertStore, http_receiver: HttpReceiver, monkeypatch: Any
) -> None:
    """A stage fails after the batch was stored: the pipeline retries the batch (which
    only merges into the stored alert), and the tick starts the escalation it missed."""
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, service = make_pipeline(
        store, registry([]), clock, policies([rx.url("centre")]), store_retry_s=(0.01, 0.01)
    )
    real_start = store.start_escalations
    failures: list[int] = []

    async def fail_once(*args: Any, **kwargs: Any) -> None:
        if not failures:
            failures.append(1)
            raise RuntimeError("stage failed after the store write")
        await real_start(*args, **kwargs)

    monkeypatch.setattr(store, "start_escalations", fail_once)
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
    assert failures == [1] and pipeline.availability.available
    monkeypatch.setattr(store, "start_escalations", real_start)
    assert len(await service.list_alerts()) == 1
    report = await pipeline.tick()
    assert report.rescheduled == 1
    assert len(rx.to("centre")) == 1
    await pipeline.tick()
    assert len(rx.to("centre")) == 1


async def test_messages_carry_a_notify_type_by_severity_and_purpose(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    """Apprise's type reaches the channel (here the JSON `type` field): an SOS is a
    failure, a low battery a warning, the follow-up saying it was handled a success."""
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, service = make_pipeline(
        store, registry([rx.url("daughter")]), clock, policies([rx.url("centre")])
    )
    await pipeline.handle_transitions(
        [transition(AlertKind.SOS, T0), transition(AlertKind.LOW_BATTERY, T0, resident=None)]
    )
    await pipeline.tick()
    assert sorted(r.doc["type"] for r in rx.to("centre")) == ["failure", "warning"]
    clock.set(T0 + 60)  # unacknowledged: the family is told
    await pipeline.tick()
    await pipeline.tick()
    assert [r.doc["type"] for r in rx.to("daughter")] == ["failure"]
    sos = next(a for a in await service.list_alerts(AlertFilter()) if a.kind == "sos")
    await service.resolve(sos.id, "resident_fine", None, by="王敏")
    await pipeline.tick()
    assert [r.doc["type"] for r in rx.to("daughter")] == ["failure", "success"]
