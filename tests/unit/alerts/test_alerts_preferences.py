"""A family's own channel choices (made in the portal) decide which of her addresses
carry safety alerts, other notifications and the daily summary. Safety alerts are
re-routed, never muted. Real HTTP and SMTP receivers; the choices come through the
`ContactPreferences` protocol (the gateway's implementation is tested in
tests/unit/gateway/test_gateway_family_link.py)."""

from __future__ import annotations

from collections.abc import Mapping

from alerts.daily_summary import DailySummaries
from alerts.recipients import (
    ContactKey,
    ContactPreference,
    channel_kind,
    routed_urls,
)
from alerts.store import AlertStore
from eldercare.clock import FakeClock
from eldercare.domain import AlertKind
from tests.helpers.alerts import (
    PUBLIC_URL,
    SITE,
    T0,
    HttpReceiver,
    SmtpReceiver,
    make_pipeline,
    policies,
    registry,
    transition,
)
from tests.integration.test_alerts_daily_summary import FixedFacts, at

MAIL = "limei@example.org"


class SavedPreferences:
    """Preferences held in memory: the protocol's simplest implementation."""

    def __init__(self, prefs: Mapping[ContactKey, ContactPreference]) -> None:
        self.prefs = dict(prefs)
        self.calls = 0

    async def contact_preferences(self) -> Mapping[ContactKey, ContactPreference]:
        self.calls += 1
        return self.prefs


def pref(safety: set[str], other: set[str], summary: str | None = None) -> ContactPreference:
    return ContactPreference(frozenset(safety), frozenset(other), summary)


def test_channels_are_classified_by_scheme() -> None:
    assert channel_kind("wecombot://0123abcd") == "wechat_work"
    assert channel_kind("wxwork://corp/secret/agent") == "wechat_work"
    assert channel_kind("mailto://u:p@mail.example.org?to=a@b") == "email"
    assert channel_kind("twilio://sid:token@+86138/+86139") == "sms"
    assert channel_kind("aliyunvoice://key@tpl/13800000001") == "voice"
    assert channel_kind("ntfy://ntfy.example.org/mum") == "push"
    assert channel_kind("json://127.0.0.1:9/") == "push"


def test_safety_is_rerouted_never_muted() -> None:
    urls = ["mailto://a@b", "json://h/push"]
    assert routed_urls(urls, None, safety=True) == tuple(urls)
    assert routed_urls(urls, pref({"email"}, set()), safety=True) == ("mailto://a@b",)
    # No address of the chosen channel: every address, rather than none.
    assert routed_urls(urls, pref({"voice"}, set()), safety=True) == tuple(urls)
    # Other notifications may be switched off.
    assert routed_urls(urls, pref({"email"}, set()), safety=False) == ()
    assert routed_urls(urls, pref({"email"}, {"push"}), safety=False) == ("json://h/push",)


async def test_safety_alert_goes_only_to_the_channels_she_chose(
    store: AlertStore, http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver
) -> None:
    rx, smtp = http_receiver, smtp_receiver
    clock = FakeClock(T0)
    index = registry([smtp.url(MAIL), rx.url("daughter-push")], [rx.url("son")])
    prefs = SavedPreferences({(SITE, "daughter"): pref({"email"}, {"push"})})
    pipeline, _ = make_pipeline(
        store, index, clock, policies([rx.url("centre")]), preferences=prefs
    )
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
    await pipeline.tick()
    clock.set(T0 + 60)
    await pipeline.tick()
    assert len(smtp.to(MAIL)) == 1
    assert rx.to("daughter-push") == []
    assert len(rx.to("son")) == 1  # no choices made: the registry's channels
    assert prefs.calls >= 1


async def test_a_choice_without_an_address_still_reaches_her(
    store: AlertStore, http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver
) -> None:
    rx, smtp = http_receiver, smtp_receiver
    clock = FakeClock(T0)
    index = registry([smtp.url(MAIL), rx.url("daughter-push")])
    prefs = SavedPreferences({(SITE, "daughter"): pref({"voice"}, set())})
    pipeline, _ = make_pipeline(
        store, index, clock, policies([rx.url("centre")]), preferences=prefs
    )
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0)])
    await pipeline.tick()
    clock.set(T0 + 60)
    await pipeline.tick()
    assert len(smtp.to(MAIL)) == 1 and len(rx.to("daughter-push")) == 1


async def test_other_notifications_follow_her_other_channels(
    store: AlertStore, http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver
) -> None:
    rx, smtp = http_receiver, smtp_receiver
    clock = FakeClock(T0)
    index = registry([smtp.url(MAIL), rx.url("daughter-push")])
    prefs = SavedPreferences({(SITE, "daughter"): pref({"email"}, {"push"})})
    pipeline, _ = make_pipeline(
        store, index, clock, policies([rx.url("centre")]), preferences=prefs
    )
    await pipeline.handle_transitions([transition(AlertKind.NOT_UP, T0)])  # medium
    await pipeline.tick()
    clock.set(T0 + 900)  # medium: family#1 after 15 min unacknowledged
    await pipeline.tick()
    assert len(rx.to("daughter-push")) == 1
    assert smtp.to(MAIL) == []

    # Switched off: nothing of this kind reaches her.
    prefs.prefs[(SITE, "daughter")] = pref({"email"}, set())
    await pipeline.handle_transitions([transition(AlertKind.NOT_RETURNED, T0 + 1000, room=None)])
    await pipeline.tick()
    clock.set(T0 + 1000 + 900)
    await pipeline.tick()
    assert len(rx.to("daughter-push")) == 1 and smtp.to(MAIL) == []


async def test_failing_preference_store_does_not_hold_an_alert_up(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver

    class Broken:
        async def contact_preferences(self) -> Mapping[ContactKey, ContactPreference]:
            raise OSError("preference store unreachable")

    clock = FakeClock(T0)
    index = registry([rx.url("daughter")])
    pipeline, _ = make_pipeline(
        store, index, clock, policies([rx.url("centre")]), preferences=Broken()
    )
    await pipeline.handle_transitions([transition(AlertKind.SOS, T0)])
    await pipeline.tick()
    clock.set(T0 + 60)
    await pipeline.tick()
    assert len(rx.to("daughter")) == 1
    assert pipeline.counters["preferences_unavailable"] >= 1


async def test_daily_summary_at_her_time_on_her_channel_or_not_at_all(
    store: AlertStore, http_receiver: HttpReceiver, smtp_receiver: SmtpReceiver
) -> None:
    rx, smtp = http_receiver, smtp_receiver
    # The registry has no summary for her; she turned it on for 21:15, by push only.
    # The son had one at 20:30 in the registry and turned it off.
    index = registry([smtp.url(MAIL), rx.url("daughter-push")], [rx.url("son")])
    doc = index.document.model_dump(mode="json")
    doc["sites"][0]["contacts"][1]["daily_summary"] = "20:30"
    from eldercare.registry_index import RegistryIndex
    from eldercare.registry_model import RegistryDocument

    index = RegistryIndex(RegistryDocument.model_validate(doc))
    prefs = SavedPreferences(
        {
            (SITE, "daughter"): pref({"email"}, {"push"}, "21:15"),
            (SITE, "son"): pref({"push"}, {"push"}, None),
        }
    )
    clock = FakeClock(at(23, 20, 0))
    summaries = DailySummaries(store, lambda: index, FixedFacts(), PUBLIC_URL, preferences=prefs)
    pipeline, _ = make_pipeline(
        store, index, clock, policies([rx.url("centre")]), daily_summaries=summaries
    )
    clock.set(at(23, 20, 31))
    await pipeline.tick()
    assert rx.to("son") == []
    clock.set(at(23, 21, 14))
    await pipeline.tick()
    assert rx.to("daughter-push") == []
    clock.set(at(23, 21, 15))
    await pipeline.tick()
    [summary] = rx.to("daughter-push")
    assert summary.doc["message"].startswith("【每日小结】张秀英")
    assert smtp.to(MAIL) == [] and rx.to("son") == []
