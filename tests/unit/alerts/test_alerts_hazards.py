"""Hazard alerts through the real pipeline and a real HTTP receiver: smoke reaches the
centre and the family at the same moment, says what to do, and a site outage does not
hold it back."""

from __future__ import annotations

import asyncio

from alerts.policy import load_policy
from alerts.records import AlertRecord
from alerts.store import AlertStore
from alerts.terms import hazard_advice
from eldercare.clock import FakeClock
from eldercare.domain import HAZARD_KINDS, AlertKind, Severity, TransitionAction
from tests.helpers.alerts import T0, HttpReceiver, make_pipeline, policies, registry, transition
from tests.helpers.polling import wait_for


def test_smoke_gas_co_have_no_waiting_step_before_the_family() -> None:
    policy = load_policy()
    for kind in (AlertKind.SMOKE, AlertKind.GAS, AlertKind.CARBON_MONOXIDE):
        first = policy.for_alert(kind, Severity.CRITICAL).steps[0]
        assert {"centre", "family"} <= set(first.notify)
    # Other critical alerts keep the severity's policy: the family after 60 s.
    assert policy.for_alert(AlertKind.SOS, Severity.CRITICAL).steps[0].notify == ["centre"]
    assert all(hazard_advice(k, "en") and hazard_advice(k, "zh-CN") for k in HAZARD_KINDS)


async def test_smoke_notifies_family_and_centre_in_the_same_second(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)  # never advanced: nothing may wait for a step's wait_s
    pipeline, service = make_pipeline(
        store, registry([rx.url("daughter")]), clock, policies([rx.url("centre")])
    )
    await pipeline.start()
    try:
        await pipeline.handle_transitions([transition(AlertKind.SMOKE, T0, room="kitchen")])
        # Smoke must reach centre and family without waiting.
        await wait_for(
            lambda: rx.to("centre") and rx.to("daughter"),
            30,
            "the centre and the family notified",
            every_s=0.01,
        )
    finally:
        await pipeline.stop()
    [centre] = rx.to("centre")
    [daughter] = rx.to("daughter")
    assert abs(centre.at - daughter.at) < 1.0
    assert centre.doc["title"] == "【紧急】烟雾报警：张秀英"
    assert "拨打119" in centre.doc["message"]
    [alert] = await service.list_alerts()
    assert alert.kind == "smoke" and alert.severity == "critical"


async def test_a_hazard_during_a_site_outage_is_not_inhibited(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, service = make_pipeline(
        store, registry([rx.url("daughter")]), clock, policies([rx.url("centre")])
    )
    await pipeline.handle_transitions(
        [transition(AlertKind.SITE_OFFLINE, T0, resident=None, room=None)]
    )
    await pipeline.handle_transitions(
        [
            transition(AlertKind.GAS, T0 + 5, room="kitchen"),
            transition(AlertKind.WATER_LEAK, T0 + 5, room="bathroom"),
            transition(AlertKind.INACTIVITY, T0 + 5),  # inhibited, as before
        ]
    )
    await pipeline.tick()
    by_kind: dict[str, AlertRecord] = {a.kind: a for a in await service.list_alerts()}
    assert by_kind["gas"].inhibited_by is None
    assert by_kind["water_leak"].inhibited_by is None
    assert by_kind["inactivity"].inhibited_by == by_kind["site_offline"].id
    await asyncio.wait_for(pipeline.settle(), 30)
    titles = {r.doc["title"] for r in rx.to("centre")}
    assert "【紧急】燃气泄漏：张秀英" in titles and "【高】漏水：张秀英" in titles
    assert [r.doc["title"] for r in rx.to("daughter")] == ["【紧急】燃气泄漏：张秀英"]


async def test_smoke_again_after_a_false_alarm_is_a_new_alert_notified_at_once(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    """Burnt toast, resolved as a false alarm; the detector sounds again: a new alert, and
    the centre and the family hear of it again without waiting."""
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, service = make_pipeline(
        store, registry([rx.url("daughter")]), clock, policies([rx.url("centre")])
    )
    await pipeline.handle_transitions([transition(AlertKind.SMOKE, T0, room="kitchen")])
    await pipeline.tick()
    [first] = await service.list_alerts()
    await pipeline.handle_transitions(
        [transition(AlertKind.SMOKE, T0 + 120, TransitionAction.CLEAR, room="kitchen")]
    )
    await service.resolve(first.id, "false_alarm", "烤面包", by="王敏")
    await pipeline.handle_transitions([transition(AlertKind.SMOKE, T0 + 600, room="kitchen")])
    await pipeline.tick()
    await asyncio.wait_for(pipeline.settle(), 30)
    alerts = sorted(await service.list_alerts(), key=lambda a: a.id)
    assert [(a.kind, a.status) for a in alerts] == [("smoke", "resolved"), ("smoke", "open")]
    centre = [r for r in rx.to("centre") if r.doc["title"].startswith("【紧急】")]
    daughter = [r for r in rx.to("daughter") if r.doc["title"].startswith("【紧急】")]
    assert len(centre) == 2 and len(daughter) == 2
