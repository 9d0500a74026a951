"""Chinese channels in the alert pipeline: an unanswered night call moves escalation
on to the next contact at once; a storm to one WeCom group bot stays within its 20
messages a minute, every alert accounted for in a digest. Real SDKs and Apprise
against the local provider stand-ins; the pipeline on a fake clock."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apprise.plugins.wecombot import NotifyWeComBot

from alerts.channels.tencent import voice_callback_outcome
from alerts.limits import Throttle, load_limits
from alerts.policy import EscalationPolicy, PolicySet, load_policy
from alerts.store import AlertStore, init_store
from eldercare import metrics
from eldercare.clock import FakeClock
from eldercare.db import create_engine
from eldercare.domain import AlertKind
from tests.helpers.alerts import T0, make_pipeline, registry, sqlite_url, transition
from tests.helpers.china_providers import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    TENCENT_SECRET_ID,
    TENCENT_SECRET_KEY,
    FakeChinaProviders,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")
TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def providers(providers: FakeChinaProviders, monkeypatch: pytest.MonkeyPatch) -> FakeChinaProviders:
    """The conftest's stand-in, with Apprise's own WeCom bot plugin pointed at its
    local bot (an endpoint override)."""
    monkeypatch.setattr(
        NotifyWeComBot,
        "notify_url",
        f"http://{providers.endpoint}/cgi-bin/webhook/send?key={{key}}",
    )
    return providers


def policy_set(steps: list[dict[str, object]], centre: list[str]) -> PolicySet:
    doc = load_policy().model_dump(mode="json")
    doc["centre"]["apprise"] = centre
    doc["severities"]["critical"] = {"steps": steps, "repeat": None}
    return PolicySet(EscalationPolicy.model_validate(doc))


def local(ts: float) -> str:
    return datetime.fromtimestamp(ts, TZ).strftime("%H:%M:%S")


async def test_an_unanswered_night_call_moves_on_to_the_next_contact(
    tmp_path: Path, providers: FakeChinaProviders
) -> None:
    providers.call_states["13900000002"] = "200005"  # the daughter does not pick up
    daughter = (
        f"aliyunvoice://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@TTS_1/13900000002?{providers.url_args()}"
    )
    son = (
        f"tencentvoice://{TENCENT_SECRET_ID}:{TENCENT_SECRET_KEY}@1400000002/13900000003"
        f"?template=200&{providers.url_args()}"
    )
    index = registry([daughter], [son])
    steps = [
        {"notify": ["family#1"], "wait_s": 600},
        {"notify": ["family#2"], "wait_s": 600},
    ]
    clock = FakeClock(T0)  # 02:41 in Binzhou: a night call
    engine = create_engine(sqlite_url(tmp_path))
    await init_store(engine)
    store = AlertStore(engine)
    pipeline, _ = make_pipeline(store, index, clock, policy_set(steps, []))
    try:
        await pipeline.handle_transitions([transition(AlertKind.FALL, T0)])
        await pipeline.tick()
        [first] = await store.notifications(purpose="alert")
        assert first.recipient == "family:daughter" and first.outcome == "calling"
        assert first.channel_kind == "voice" and first.provider_ref
        assert len(providers.of("SingleCallByTts")) == 1

        clock.set(T0 + 30)  # the provider's record says: not answered
        await pipeline.tick()
        await pipeline.tick()  # the next step, due at once, runs
        rows = await store.notifications(purpose="alert")
        by_recipient = {r.recipient: r for r in rows}
        assert by_recipient["family:daughter"].outcome == "not_answered"
        assert by_recipient["family:daughter"].state == "failed"
        son_row = by_recipient["family:son"]
        assert son_row.outcome == "calling" and son_row.provider_ref
        [tts] = providers.of("SendTtsVoice")
        assert tts.params["CalledNumber"] == "+8613900000003"
        assert son_row.created_at == T0 + 30  # at once, not 600 s after the first call

        clock.set(T0 + 55)  # Tencent's status callback: the son answered
        callback = providers.tencent_voice_callback(son_row.provider_ref)
        outcome = voice_callback_outcome(callback)
        assert outcome is not None
        assert await pipeline.record_call_outcomes([outcome]) == 1
        [son_after] = [
            r for r in await store.notifications(purpose="alert") if r.recipient == "family:son"
        ]
        assert son_after.outcome == "answered" and son_after.state == "sent"

        history = await store.history(first.alert_id or 0)
        timeline = [(h.wall_time, h.action, h.data.get("recipient", "")) for h in history]
        actions = [a for _, a, _ in timeline]
        assert actions.index("call_not_answered") < actions.index("unanswered")
        assert "call_answered" in actions
        assert actions.count("unanswered") == 1  # the answered call moved nothing on
        print("\nescalation timeline (Asia/Shanghai):")
        for wall, action, who in timeline:
            print(f"  {local(wall)}  {action:<20} {who}")
    finally:
        await pipeline.stop()
        await engine.dispose()


async def test_a_storm_of_200_alerts_reaches_one_wecom_bot_as_at_most_20_messages(
    tmp_path: Path, providers: FakeChinaProviders
) -> None:
    bot = "wecombot://stormkey"
    index = registry([], [])
    steps = [{"notify": ["centre"], "wait_s": 3600}]
    clock = FakeClock(T0)
    engine = create_engine(sqlite_url(tmp_path))
    await init_store(engine)
    store = AlertStore(engine)
    pipeline, _ = make_pipeline(store, index, clock, policy_set(steps, [bot]))
    digested_before = metrics.counter("notifications_digested_total", "", ["channel"]).value(
        channel="wechat_work"
    )
    kinds = [AlertKind.FALL, AlertKind.SOS, AlertKind.FALL, AlertKind.WEARABLE_FALL]
    try:
        for i in range(200):  # 200 alerts in 60 s, one every 0.3 s; ticks every second
            ts = T0 + i * 0.3
            if ts >= clock.now() + 1:
                clock.set(ts)
                await pipeline.tick()
            await pipeline.handle_transitions([transition(kinds[i % 4], ts, resident=f"r-{i:03d}")])
        for s in range(61, 75):  # what is still held goes at the next slots
            clock.set(T0 + s)
            await pipeline.tick()
        rows = await store.notifications()
        alerts = [r for r in rows if r.purpose == "alert"]
        digests = {r.id: r for r in rows if r.purpose == "digest"}
        assert len(alerts) == 200
        assert providers.wecom_refused == 0
        sent_to_bot = len(providers.wecom_messages)
        assert sent_to_bot <= 20
        # Every alert went alone or inside a digest that was sent.
        alone = [r for r in alerts if r.state == "sent"]
        folded = [r for r in alerts if r.state == "digested"]
        assert len(alone) + len(folded) == 200
        assert all(r.digest_id in digests for r in folded)
        assert all(d.state == "sent" for d in digests.values())
        assert sent_to_bot == len(alone) + len(digests)
        counted = 0
        for _, _, content in providers.wecom_messages:
            m = re.search(r"(\d+) 条新警报", content)
            counted += int(m.group(1)) if m else 1
        assert counted == 200
        assert any("跌倒" in c and "一键呼叫" in c for _, _, c in providers.wecom_messages)
        digested_now = metrics.counter("notifications_digested_total", "", ["channel"]).value(
            channel="wechat_work"
        )
        assert digested_now - digested_before == len(folded)
        assert 'eldercare_notifications_digested_total{channel="wechat_work"}' in (
            metrics.render_prometheus()
        )
        print(
            f"\nstorm: 200 alerts in 60 s → {sent_to_bot} WeCom messages "
            f"({len(alone)} single, {len(digests)} digests of {len(folded)} alerts), "
            f"refused by the bot: {providers.wecom_refused}"
        )
    finally:
        await pipeline.stop()
        await engine.dispose()


async def test_voice_limits_per_number_and_the_night_rule() -> None:
    limits = load_limits()
    throttle = Throttle(limits)
    aliyun = limits.for_url("aliyunvoice://k:s@TTS/138")
    tencent = limits.for_url("tencentvoice://k:s@app/138")
    assert aliyun is not None and tencent is not None
    tz = "Asia/Shanghai"
    day = datetime(2026, 12, 7, 10, 0, tzinfo=TZ).timestamp()
    # Aliyun: 1 a minute, 5 an hour.
    t = day
    for i in range(5):
        slot = throttle.slot("a", aliyun, t, tz)
        assert slot.at == t
        throttle.note_sent("a", aliyun, t, tz)
        if i < 4:  # the fifth call of the hour: the hour's limit binds instead
            assert throttle.slot("a", aliyun, t + 30, tz).at == t + 60
        t += 60
    assert throttle.slot("a", aliyun, t, tz).at == day + 3600
    assert throttle.slot("a", aliyun, t, tz).refused
    # Tencent: one call between 22:00 and 08:00; the second waits for the morning.
    night = datetime(2026, 12, 7, 23, 0, tzinfo=TZ).timestamp()
    assert throttle.slot("t", tencent, night, tz).at == night
    throttle.note_sent("t", tencent, night, tz)
    later = night + 3600
    slot = throttle.slot("t", tencent, later, tz)
    assert slot.at == datetime(2026, 12, 8, 8, 0, tzinfo=TZ).timestamp() and slot.refused
    morning = datetime(2026, 12, 8, 9, 0, tzinfo=TZ).timestamp()
    assert throttle.slot("t", tencent, morning, tz).at == morning


async def test_a_second_night_call_to_one_number_is_throttled_and_moves_on(
    tmp_path: Path, providers: FakeChinaProviders
) -> None:
    """Tencent allows one call a night per number: the second alert's call is not
    placed; it counts as dropped and its step as unanswered (the next contact is due)."""
    daughter = (
        f"tencentvoice://{TENCENT_SECRET_ID}:{TENCENT_SECRET_KEY}@1400000002/13900000002"
        f"?template=200&{providers.url_args()}"
    )
    son = f"aliyunsms://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@SMS_1/13900000003?sign=x&{providers.url_args()}"
    index = registry([daughter], [son])
    steps = [{"notify": ["family#1"], "wait_s": 600}, {"notify": ["family#2"], "wait_s": 600}]
    clock = FakeClock(T0)  # 02:41
    engine = create_engine(sqlite_url(tmp_path))
    await init_store(engine)
    store = AlertStore(engine)
    pipeline, _ = make_pipeline(store, index, clock, policy_set(steps, []))
    dropped = metrics.counter("notifications_dropped_total", "", ["channel"])
    before = dropped.value(channel="voice")
    try:
        await pipeline.handle_transitions([transition(AlertKind.FALL, T0)])
        await pipeline.tick()
        clock.set(T0 + 3600)  # 03:41, another alert for her mother
        await pipeline.handle_transitions([transition(AlertKind.SOS, T0 + 3600)])
        await pipeline.tick()
        await pipeline.tick()  # the unanswered step's next one, due at once
        rows = await store.notifications(purpose="alert")
        calls = [r for r in rows if r.channel_kind == "voice"]
        # The first call had no status callback within 120 s: not answered as well.
        assert [(r.state, r.outcome) for r in calls] == [
            ("failed", "not_answered"),
            ("failed", "throttled"),
        ]
        assert len(providers.of("SendTtsVoice")) == 1
        assert dropped.value(channel="voice") - before == 1
        second_alert = calls[1].alert_id
        sms = [r for r in rows if r.alert_id == second_alert and r.channel_kind == "sms"]
        assert len(sms) == 1 and sms[0].recipient == "family:son"
        assert sms[0].created_at == T0 + 3600  # the son at once, not 600 s later
    finally:
        await pipeline.stop()
        await engine.dispose()


async def test_a_delivered_sms_does_not_answer_a_call_nobody_picked_up(
    tmp_path: Path, providers: FakeChinaProviders
) -> None:
    providers.call_states["13900000002"] = "200005"
    args = providers.url_args()
    daughter = [
        f"aliyunvoice://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@TTS_1/13900000002?{args}",
        f"aliyunsms://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@SMS_1/13900000002?sign=x&{args}",
    ]
    son = [f"aliyunsms://{ALIYUN_KEY_ID}:{ALIYUN_SECRET}@SMS_1/13900000003?sign=x&{args}"]
    steps = [{"notify": ["family#1"], "wait_s": 600}, {"notify": ["family#2"], "wait_s": 600}]
    clock = FakeClock(T0)
    engine = create_engine(sqlite_url(tmp_path))
    await init_store(engine)
    store = AlertStore(engine)
    pipeline, _ = make_pipeline(store, registry(daughter, son), clock, policy_set(steps, []))
    try:
        await pipeline.handle_transitions([transition(AlertKind.FALL, T0)])
        await pipeline.tick()
        clock.set(T0 + 30)
        await pipeline.tick()  # receipts: SMS delivered, call not answered
        await pipeline.tick()
        rows = await store.notifications(purpose="alert")
        got = {(r.recipient, r.channel_kind): (r.outcome, r.created_at) for r in rows}
        assert got[("family:daughter", "sms")] == ("delivered", T0)
        assert got[("family:daughter", "voice")] == ("not_answered", T0)
        assert got[("family:son", "sms")][1] == T0 + 30
    finally:
        await pipeline.stop()
        await engine.dispose()
