"""Timeline tests on a FakeClock with real receivers: who is notified when."""

from __future__ import annotations

from alerts.store import AlertStore
from eldercare.clock import FakeClock
from eldercare.domain import AlertKind, TransitionAction
from tests.helpers.alerts import (
    PUBLIC_URL,
    T0,
    HttpReceiver,
    SmtpReceiver,
    make_pipeline,
    policies,
    registry,
    subject,
    text_body,
    transition,
)


async def test_sos_notifies_centre_at_once_then_family_at_60s(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    index = registry([rx.url("daughter")], [rx.url("son")], [rx.url("super")])
    pipeline, service = make_pipeline(store, index, clock, policies([rx.url("centre")]))

    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
    await pipeline.tick()
    assert len(rx.to("centre")) == 1
    assert rx.to("daughter") == [] and rx.to("super") == []
    centre = rx.to("centre")[0].doc
    assert centre["message"].startswith("【紧急】张秀英（黄河社区 3-2-401）卧室 02:41 一键呼叫。")
    assert "致电本人 13800000001" in centre["message"]
    assert "联系家属 李梅 13900000002" in centre["message"]
    assert f"{PUBLIC_URL}/console#alert-1" in centre["message"]

    clock.set(T0 + 59.9)
    await pipeline.tick()
    assert rx.to("daughter") == []

    clock.set(T0 + 60.0)
    await pipeline.tick()
    assert len(rx.to("daughter")) == 1
    assert len(rx.to("son")) == 1
    assert len(rx.to("super")) == 1
    assert len(rx.to("centre")) == 1  # the centre is not re-paged until the repeat
    daughter = rx.to("daughter")[0].doc["message"]
    assert daughter.startswith("【紧急】张秀英（黄河社区 3-2-401）卧室 02:41 一键呼叫。")
    assert "请致电本人 13800000001 或 联系服务中心 0543-1234567。" in daughter
    assert daughter.endswith(f"查看：{PUBLIC_URL}/family#alert-1")
    son = rx.to("son")[0].doc["message"]
    assert son.startswith("[URGENT] 张秀英 (黄河社区 3-2-401), 卧室, 02:41: SOS call.")
    assert "Call her on 13800000001 or contact the service centre 0543-1234567." in son
    assert son.endswith(f"Details: {PUBLIC_URL}/family#alert-1")

    # Unacknowledged, the repeat re-pages everyone 120 s after the family step.
    clock.set(T0 + 180.0)
    await pipeline.tick()
    assert len(rx.to("centre")) == 2 and len(rx.to("daughter")) == 2

    detail = await service.get_alert(1)
    assert detail is not None
    actions = [h.action for h in detail.history]
    assert actions[0] == "raised"
    assert actions.count("escalated") == 3
    # centre; daughter, son, supervisor; then all four again
    assert actions.count("notified") == 1 + 3 + 4


async def test_acknowledgement_stops_escalation(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    clock = FakeClock(T0)
    index = registry([rx.url("daughter")], [rx.url("son")], [rx.url("super")])
    pipeline, service = make_pipeline(store, index, clock, policies([rx.url("centre")]))

    await pipeline.handle_transitions([transition(AlertKind.FALL, T0)])
    await pipeline.tick()
    clock.set(T0 + 42.0)
    alert = await service.acknowledge(1, by="王敏")
    assert alert.status == "acknowledged"
    assert alert.acknowledged_by == "王敏" and alert.acknowledged_at == T0 + 42.0
    for t in (60.0, 61.0, 300.0, 3600.0):
        clock.set(T0 + t)
        await pipeline.tick()
    assert len(rx.to("centre")) == 1
    assert rx.to("daughter") == [] and rx.to("son") == [] and rx.to("super") == []
    state = await store.escalation_state(1)
    assert state is not None and not state.active

    # A repeated trigger of the same fall (the detector's update) merges into the
    # acknowledged alert and pages nobody; a new fall would re-raise it
    # (tests/test_alerts_re_raise.py).
    await pipeline.handle_transitions(
        [transition(AlertKind.FALL, T0 + 3601, TransitionAction.UPDATE)]
    )
    await pipeline.tick()
    assert len(await service.list_alerts()) == 1
    assert len(rx.to("centre")) == 1


async def test_family_follow_up_tells_how_it_was_handled_over_smtp(
    store: AlertStore, smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver
) -> None:
    smtp = smtp_receiver
    clock = FakeClock(T0)
    index = registry([smtp.url("limei@example.org")], [smtp.url("liwei@example.org")])
    pipeline, service = make_pipeline(store, index, clock, policies([http_receiver.url("centre")]))
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0)])
    await pipeline.tick()
    clock.set(T0 + 60)
    await pipeline.tick()

    [zh] = smtp.to("limei@example.org")
    assert subject(zh) == "【紧急】跌倒：张秀英"
    body = text_body(zh)
    assert body.startswith("【紧急】张秀英（黄河社区 3-2-401）卧室 02:41 跌倒。")
    assert f"{PUBLIC_URL}/family#alert-1" in body
    [en] = smtp.to("liwei@example.org")
    assert subject(en) == "[URGENT] Fall: 张秀英"
    assert text_body(en).startswith("[URGENT] 张秀英 (黄河社区 3-2-401), 卧室, 02:41: Fall.")

    clock.set(T0 + 14 * 60)  # 02:55
    await service.resolve(1, "assisted_on_site", "邻居已扶起，无外伤", by="王敏")
    await pipeline.tick()
    zh_follow = smtp.to("limei@example.org")[1]
    assert subject(zh_follow) == "【已处置】跌倒：张秀英"
    assert text_body(zh_follow).startswith(
        "【已处置】张秀英的跌倒警报（02:41）已于 02:55 由王敏处置：上门协助。"
        "备注：邻居已扶起，无外伤。"
    )
    en_follow = smtp.to("liwei@example.org")[1]
    assert text_body(en_follow).startswith(
        "[Handled] 张秀英's Fall alert (02:41) was handled at 02:55 by 王敏: assisted on site."
    )
    # Resolved: no more escalation, and the follow-up is sent once.
    clock.set(T0 + 3600)
    await pipeline.tick()
    assert len(smtp.to("limei@example.org")) == 2
