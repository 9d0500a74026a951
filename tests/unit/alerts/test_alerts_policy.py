"""Escalation policies, inhibition and silences as data; the pure decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts import decisions
from alerts.policy import (
    EscalationPolicy,
    PolicyError,
    PolicySet,
    load_inhibit_rules,
    load_policy,
)
from alerts.records import AlertRecord, EscalationState
from alerts.store import AlertStore
from eldercare.clock import FakeClock
from eldercare.domain import AlertKind, Severity, TransitionAction
from tests.helpers.alerts import (
    RESIDENT,
    T0,
    HttpReceiver,
    make_pipeline,
    policies,
    registry,
    transition,
)


def _alert(**kw: object) -> AlertRecord:
    base: dict[str, object] = {
        "id": 1,
        "site": "s",
        "resident": "r",
        "room": None,
        "device": None,
        "kind": "fall",
        "severity": "critical",
        "condition": "active",
        "status": "open",
        "raised_at": T0,
        "created_at": T0,
        "last_update": T0,
    }
    base.update(kw)
    return AlertRecord(**base)  # type: ignore[arg-type]


def test_shipped_policy_matches_the_contract() -> None:
    policy = load_policy()
    critical = policy.severities[Severity.CRITICAL]
    assert critical.steps[0].notify == ["centre"] and critical.steps[0].wait_s == 60
    assert set(critical.steps[1].notify) == {"family", "supervisor"}
    assert critical.repeat is not None
    assert not critical.auto_resolve_cleared
    assert not policy.severities[Severity.HIGH].auto_resolve_cleared
    rules = load_inhibit_rules()
    names = {r.name for r in rules.rules}
    assert names == {"site_offline_inhibits_device_and_activity", "fall_inhibits_inactivity"}


def test_policy_refuses_typos_and_auto_resolving_critical(tmp_path: Path) -> None:
    doc = load_policy().model_dump(mode="json")
    doc["severities"]["critical"]["stepz"] = []
    with pytest.raises(ValueError, match="stepz"):
        EscalationPolicy.model_validate(doc)
    doc = load_policy().model_dump(mode="json")
    doc["severities"]["critical"]["auto_resolve_cleared"] = True
    with pytest.raises(ValueError, match="not allowed for critical"):
        EscalationPolicy.model_validate(doc)
    doc = load_policy().model_dump(mode="json")
    doc["severities"]["high"]["steps"][0]["notify"] = ["centre", "familly"]
    with pytest.raises(ValueError):
        EscalationPolicy.model_validate(doc)
    bad = tmp_path / "policy.yaml"
    bad.write_text("severities: {critical: {steps: []}}\n")
    with pytest.raises(PolicyError, match="no policy for severities"):
        load_policy(bad)


def test_site_override_replaces_a_severity_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "hh-1.yaml").write_text(
        "severities:\n"
        "  critical:\n"
        "    steps:\n"
        "      - {notify: [centre, family], wait_s: 30}\n"
        "centre: {phone: '0543-7654321', apprise: ['json://127.0.0.1:9/x']}\n",
        encoding="utf-8",
    )
    policy_set = PolicySet.load(overrides_dir=tmp_path)
    site = policy_set.for_site("hh-1")
    assert site.severities[Severity.CRITICAL].steps[0].wait_s == 30
    assert site.severities[Severity.HIGH] == policy_set.default.severities[Severity.HIGH]
    assert site.centre.phone == "0543-7654321"
    assert policy_set.for_site("elsewhere") is policy_set.default


def test_escalation_decisions() -> None:
    policy = load_policy().severities[Severity.CRITICAL]
    state = EscalationState(1, "critical", 0, 0, T0, None, True)
    alert = _alert()
    assert decisions.should_escalate(alert, state, T0)
    assert not decisions.should_escalate(alert, state, T0 - 0.1)
    assert not decisions.should_escalate(_alert(status="acknowledged"), state, T0)
    assert not decisions.should_escalate(_alert(inhibited_by=7), state, T0)
    first, specs, what = decisions.next_state(state, policy, T0)
    assert specs == ["centre"] and what == "step" and first.next_due == T0 + 60
    second, specs, _ = decisions.next_state(first, policy, T0 + 60)
    assert set(specs) == {"family", "supervisor"} and second.next_due == T0 + 180
    assert not decisions.has_next_step(second, policy)
    third, specs, what = decisions.next_state(second, policy, T0 + 180)
    assert what == "repeat" and third.next_due == T0 + 300 and third.round == 3
    # After a long outage the next wait counts from now, not from the stale due time.
    late, _, _ = decisions.next_state(first, policy, T0 + 3600)
    assert late.next_due == pytest.approx(T0 + 3600 - 1 + 120)


def test_retry_backoff_and_give_up() -> None:
    delivery = load_policy().delivery
    assert decisions.retry_at(1, delivery, 100.0) == 105.0
    assert decisions.retry_at(2, delivery, 100.0) == 110.0
    assert decisions.retry_at(3, delivery, 100.0) is None


def test_inhibition_and_silence_decisions() -> None:
    rules = load_inhibit_rules()
    offline = _alert(id=10, kind="site_offline", resident=None, severity="high")
    inactivity = _alert(id=11, kind="inactivity", severity="high")
    sos = _alert(id=12, kind="sos")
    found = decisions.inhibitor_of(inactivity, [offline], rules)
    assert found is not None and found[0].id == 10
    assert decisions.inhibitor_of(sos, [offline], rules) is None
    other_site = _alert(id=13, kind="inactivity", site="t")
    assert decisions.inhibitor_of(other_site, [offline], rules) is None
    fall = _alert(id=14, kind="wearable_fall")
    assert decisions.inhibitor_of(inactivity, [fall], rules) is not None
    other_resident = _alert(id=15, kind="inactivity", resident="someone-else")
    assert decisions.inhibitor_of(other_resident, [fall], rules) is None
    assert (
        decisions.inhibitor_of(inactivity, [_alert(id=16, kind="fall", condition="cleared")], rules)
        is None
    )
    assert decisions.inhibition_ended(_alert(kind="fall", status="resolved"))
    assert not decisions.inhibition_ended(fall)

    from alerts.policy import Silence

    window = Silence(
        kinds=[AlertKind.DEVICE_OFFLINE],
        starts=datetime(2026, 11, 22, 0, 0, tzinfo=UTC),
        ends=datetime(2026, 11, 23, 0, 0, tzinfo=UTC),
        reason="installation",
    )
    assert decisions.silence_of(_alert(kind="device_offline"), [window], T0) is window
    assert decisions.silence_of(_alert(kind="fall"), [window], T0) is None
    assert decisions.silence_of(_alert(kind="device_offline"), [window], T0 + 86400) is None


async def test_inhibited_alerts_are_stored_recorded_and_not_notified(
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
            transition(AlertKind.INACTIVITY, T0 + 10),
            transition(AlertKind.DEVICE_OFFLINE, T0 + 10, resident=None),
            transition(AlertKind.SOS, T0 + 10),  # not inhibited: a press proves the link
        ]
    )
    await pipeline.tick()
    by_kind: dict[str, AlertRecord] = {a.kind: a for a in await service.list_alerts()}
    offline = by_kind["site_offline"]
    assert by_kind["inactivity"].inhibited_by == offline.id
    assert by_kind["device_offline"].inhibited_by == offline.id
    assert by_kind["sos"].inhibited_by is None
    messages = [r.doc["title"] for r in rx.to("centre")]
    assert sorted(messages) == ["【紧急】一键呼叫：张秀英", "【高】站点离线（无监护）：张秀英家"]
    [offline_msg] = [r.doc["message"] for r in rx.to("centre") if "站点离线" in r.doc["title"]]
    assert offline_msg.startswith("【高】张秀英家（黄河社区 3-2-401）02:41 站点离线（无监护）。")
    assert "请致电本人 13800000001" in offline_msg
    detail = await service.get_alert(by_kind["inactivity"].id)
    assert detail is not None
    inhibited = [h for h in detail.history if h.action == "inhibited"]
    assert inhibited and inhibited[0].data == {
        "inhibited_by": offline.id,
        "rule": "site_offline_inhibits_device_and_activity",
    }

    # The site comes back: the still-active inactivity alert is released and escalates.
    clock.set(T0 + 300)
    await pipeline.handle_transitions(
        [transition(AlertKind.SITE_OFFLINE, T0 + 290, TransitionAction.CLEAR, resident=None)]
    )
    await pipeline.tick()
    released = await service.get_alert(by_kind["inactivity"].id)
    assert released is not None and released.alert.inhibited_by is None
    assert "released" in [h.action for h in released.history]
    assert "【高】长时间无活动：张秀英" in [r.doc["title"] for r in rx.to("centre")]


async def test_fall_inhibits_inactivity_of_the_same_resident_only(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, service = make_pipeline(store, registry([]), clock, policies([rx.url("centre")]))
    await pipeline.handle_transitions(
        [
            transition(AlertKind.FALL, T0),
            transition(AlertKind.INACTIVITY, T0 + 1),
            transition(AlertKind.INACTIVITY, T0 + 1, resident="neighbour-resident"),
        ]
    )
    await pipeline.tick()
    inactivity = {a.resident: a for a in await service.list_alerts() if a.kind == "inactivity"}
    assert inactivity[RESIDENT].inhibited_by is not None
    assert inactivity["neighbour-resident"].inhibited_by is None
    assert len(rx.to("centre")) == 2


async def test_silenced_alert_is_recorded_not_notified(
    store: AlertStore, http_receiver: HttpReceiver, tmp_path: Path
) -> None:
    rx = http_receiver
    (tmp_path / "hh-3-2-401.yaml").write_text(
        "silences:\n"
        "  - {kinds: [device_offline], starts: '2026-11-22T00:00:00+08:00',\n"
        "     ends: '2026-11-24T00:00:00+08:00', reason: 设备安装调试}\n",
        encoding="utf-8",
    )
    base = policies([rx.url("centre")])
    policy_set = PolicySet(base.default, PolicySet.load(overrides_dir=tmp_path).overrides)
    clock = FakeClock(T0)
    pipeline, service = make_pipeline(store, registry([]), clock, policy_set)
    await pipeline.handle_transitions([transition(AlertKind.DEVICE_OFFLINE, T0, resident=None)])
    await pipeline.tick()
    [alert] = await service.list_alerts()
    assert alert.silenced_by == "设备安装调试"
    assert rx.to("centre") == []
    detail = await service.get_alert(alert.id)
    assert detail is not None and "silenced" in [h.action for h in detail.history]


async def test_a_new_inhibitor_pauses_an_open_alerts_escalation(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, service = make_pipeline(
        store, registry([rx.url("daughter")]), clock, policies([rx.url("centre")])
    )
    await pipeline.handle_transitions([transition(AlertKind.INACTIVITY, T0)])
    await pipeline.tick()
    assert [r.doc["title"] for r in rx.to("centre")] == ["【高】长时间无活动：张秀英"]
    clock.set(T0 + 100)
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0 + 100)])
    await pipeline.tick()
    by_kind: dict[str, AlertRecord] = {a.kind: a for a in await service.list_alerts()}
    assert by_kind["inactivity"].inhibited_by == by_kind["fall"].id
    clock.set(T0 + 120)
    await service.acknowledge(by_kind["fall"].id, by="王敏")  # before its family step
    for t in (180, 400, 1000):  # the inactivity alert's family step would be due at +180
        clock.set(T0 + t)
        await pipeline.tick()
    assert rx.to("daughter") == []
    assert len(rx.to("centre")) == 2  # inactivity, then the fall


async def test_info_shows_in_the_console_only_and_warning_pages_the_centre_once(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    pipeline, service = make_pipeline(
        store, registry([rx.url("daughter")]), clock, policies([rx.url("centre")])
    )
    await pipeline.handle_transitions(
        [transition(AlertKind.ROUTINE_DEVIATION, T0), transition(AlertKind.LOW_BATTERY, T0)]
    )
    for t in (0, 60, 600, 3600):
        clock.set(T0 + t)
        await pipeline.tick()
    by_kind: dict[str, AlertRecord] = {a.kind: a for a in await service.list_alerts()}
    info = await service.get_alert(by_kind["routine_deviation"].id)
    assert info is not None and [h.action for h in info.history] == ["raised"]
    assert await store.escalation_state(info.alert.id) is None
    assert [r.doc["title"] for r in rx.to("centre")] == ["【提示】电量低：张秀英"]
    assert rx.to("daughter") == []
