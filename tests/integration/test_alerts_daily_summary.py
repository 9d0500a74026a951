"""The family's daily summary: fact rules, composition, once a day per contact, and
facts from a real InfluxDB."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest_asyncio

from alerts.daily_summary import (
    DailySummaries,
    DayFacts,
    InfluxDayFacts,
    Windows,
    away_seconds,
    bathroom_visits,
    compose_summary,
    got_up_time,
    windows,
)
from alerts.pipeline import AlertPipeline
from alerts.service import AlertService
from alerts.store import AlertStore
from eldercare.clock import FakeClock
from eldercare.domain import AlertCondition, AlertKind, AlertStatus, Severity
from eldercare.influx import InfluxClient, encode_line, ts_to_ns
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument, Resident, Site
from tests.helpers.alerts import (
    PUBLIC_URL,
    T0,
    HttpReceiver,
    make_pipeline,
    policies,
    registry,
    transition,
)

TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, hh: int, mm: int = 0) -> float:
    return datetime(2026, 11, day, hh, mm, tzinfo=TZ).timestamp()


def test_windows_for_an_evening_summary() -> None:
    w = windows(at(23, 20, 30), "Asia/Shanghai")
    assert w.night == (at(22, 22), at(23, 6))
    assert w.morning == (at(23, 4), at(23, 12))
    assert w.day == (at(22, 20, 30), at(23, 20, 30))
    early = windows(at(23, 8), "Asia/Shanghai")
    assert early.morning == (at(23, 4), at(23, 8))


def test_fact_rules() -> None:
    morning = (at(23, 4), at(23, 12))
    bed = [
        (at(22, 22, 5), True),
        (at(23, 2, 30), False),
        (at(23, 2, 40), True),
        (at(23, 6, 42), False),
    ]
    # 02:30 is before the morning window; the first exit in it is 06:42.
    assert got_up_time(bed, [], morning) == at(23, 6, 42)
    assert got_up_time([], [at(23, 3), at(23, 7, 5)], morning) == at(23, 7, 5)
    assert got_up_time([], [], morning) is None

    night = (at(22, 22), at(23, 6))
    activity = [at(23, 1, 0), at(23, 1, 3), at(23, 1, 9), at(23, 3, 30), at(23, 7)]
    assert bathroom_visits(activity, night) == 2

    day = (at(22, 20, 30), at(23, 20, 30))
    doors = [at(23, 9, 10), at(23, 10, 45), at(23, 15)]
    indoor = [at(23, 9, 10), at(23, 10, 46), at(23, 15, 2)]
    # Out 09:10 → back 10:46 (96 min); the 15:00 door had movement 2 min later: nobody left.
    assert away_seconds(doors, indoor, day) == at(23, 10, 46) - at(23, 9, 10)


def _site() -> tuple[Site, Resident]:
    site = registry([]).sites["hh-3-2-401"]
    resident = site.residents[0]
    return site, resident


def test_compose_in_both_languages() -> None:
    site, resident = _site()
    facts = DayFacts(got_up_at=at(23, 6, 42), night_bathroom_visits=2, away_seconds=95 * 60)
    from alerts.records import AlertRecord

    fall = AlertRecord(
        id=7,
        site=site.id,
        resident=resident.id,
        room="bedroom",
        device=None,
        kind=AlertKind.FALL,
        severity=Severity.CRITICAL,
        condition=AlertCondition.CLEARED,
        status=AlertStatus.RESOLVED,
        raised_at=at(23, 2, 41),
        created_at=at(23, 2, 41),
        last_update=at(23, 2, 41),
        resolved_at=at(23, 2, 55),
        resolved_by="王敏",
        outcome="assisted_on_site",
    )
    _, zh = compose_summary(site, resident, facts, [fall], "zh-CN", at(23, 20, 30), PUBLIC_URL)
    assert zh == (
        "【每日小结】张秀英 11月23日：06:42 起床；夜间如厕 2 次；外出 1小时35分钟；"
        "今日警报 1 条：02:41 跌倒，由王敏处置（上门协助）。查看：https://care.example.org/family"
    )
    _, en = compose_summary(site, resident, facts, [], "en", at(23, 20, 30), PUBLIC_URL)
    assert en == (
        "[Daily summary] 张秀英, 23 Nov: up at 06:42; 2 night bathroom visits; "
        "away from home 1 h 35 min; no alerts today. Details: https://care.example.org/family"
    )
    _, unknown = compose_summary(
        site, resident, DayFacts(), [], "zh-CN", at(23, 20, 30), PUBLIC_URL
    )
    assert "未见起床记录" in unknown and "如厕" not in unknown


class FixedFacts:
    """A DayFactsSource of given facts: the seam the module provides for composition."""

    def __init__(self) -> None:
        self.calls: list[Windows] = []

    async def day_facts(self, site: Site, resident: Resident, w: Windows) -> DayFacts:
        self.calls.append(w)
        return DayFacts(got_up_at=at(23, 6, 42), night_bathroom_visits=1, away_seconds=0)


def _with_summary(index: RegistryIndex, hhmm: str) -> RegistryIndex:
    doc = index.document.model_dump(mode="json")
    for c in doc["sites"][0]["contacts"]:
        c["daily_summary"] = hhmm if c["role"] == "family" else None
    return RegistryIndex(RegistryDocument.model_validate(doc))


async def test_sent_once_a_day_at_the_chosen_time_even_across_restarts(
    store: AlertStore, http_receiver: HttpReceiver
) -> None:
    rx = http_receiver
    index = _with_summary(registry([rx.url("daughter")], [rx.url("son")]), "20:30")
    clock = FakeClock(T0)
    facts = FixedFacts()

    def build() -> tuple[AlertPipeline, AlertService]:
        summaries = DailySummaries(store, lambda: index, facts, PUBLIC_URL)
        return make_pipeline(
            store, index, clock, policies([rx.url("centre")]), daily_summaries=summaries
        )

    pipeline, service = build()
    await pipeline.handle_transitions([transition(AlertKind.FALL, T0)])
    await pipeline.tick()
    await service.resolve(1, "resident_fine", None, by="王敏")
    clock.set(at(23, 20, 29))
    await pipeline.tick()
    assert rx.to("daughter") == []
    clock.set(at(23, 20, 30))
    await pipeline.tick()
    [zh] = rx.to("daughter")
    assert zh.doc["message"].startswith(
        "【每日小结】张秀英 11月23日：06:42 起床；夜间如厕 1 次；未外出；"
        "今日警报 1 条：02:41 跌倒，由王敏处置（老人无恙）"
    )
    [en] = rx.to("son")
    assert en.doc["message"].startswith(
        "[Daily summary] 张秀英, 23 Nov: up at 06:42; 1 night bathroom visit; stayed home;"
    )
    clock.set(at(23, 20, 45))
    await pipeline.tick()
    restarted, _ = build()  # a new pipeline over the same database
    clock.set(at(23, 21, 0))
    await restarted.tick()
    assert len(rx.to("daughter")) == 1 and len(rx.to("son")) == 1
    clock.set(at(24, 20, 31))
    await restarted.tick()
    assert len(rx.to("daughter")) == 2
    assert "今日无警报" in rx.to("daughter")[1].doc["message"]
    # Too late (over 3 h) is skipped rather than sent in the middle of the night.
    clock.set(at(25, 23, 45))
    await restarted.tick()
    assert len(rx.to("daughter")) == 2


@pytest_asyncio.fixture(loop_scope="function")
async def influx(influx_url: str) -> AsyncIterator[tuple[InfluxClient, str]]:
    db = f"alerts_summary_{uuid.uuid4().hex[:8]}"
    client = InfluxClient(influx_url)
    await client.query(f'CREATE DATABASE "{db}"')
    yield client, db
    await client.query(f'DROP DATABASE "{db}"')
    await client.aclose()


async def test_facts_from_readings_in_influxdb(influx: tuple[InfluxClient, str]) -> None:
    client, db = influx
    doc = registry([]).document.model_dump(mode="json")
    doc["sites"][0]["devices"] = [
        {"id": "bed-1", "kind": "bed", "room": "bedroom", "resident": "zhang-xiuying"},
        {"id": "door-1", "kind": "door", "room": "bathroom", "outer_door": True},
        {"id": "pir-bath", "kind": "motion", "room": "bathroom"},
        {"id": "pir-bed", "kind": "motion", "room": "bedroom"},
    ]
    site = RegistryDocument.model_validate(doc).sites[0]
    resident = site.residents[0]

    def point(measurement: str, device: str, room: str, field: str, value: bool, ts: float) -> str:
        return encode_line(
            measurement,
            {"site": site.id, "device": device, "room": room},
            {field: value},
            ts_to_ns(ts),
        )

    lines = [
        point("occupancy", "bed-1", "bedroom", "occupied", True, at(22, 22, 10)),
        point("motion", "pir-bath", "bathroom", "motion", True, at(23, 1, 5)),
        point("motion", "pir-bath", "bathroom", "motion", True, at(23, 1, 8)),
        point("motion", "pir-bath", "bathroom", "motion", True, at(23, 4, 20)),
        point("occupancy", "bed-1", "bedroom", "occupied", False, at(23, 6, 42)),
        point("contact", "door-1", "bathroom", "open", True, at(23, 9, 0)),
        point("motion", "pir-bed", "bedroom", "motion", True, at(23, 11, 30)),
        # another site's readings must not count
        encode_line(
            "motion",
            {"site": "elsewhere", "device": "x", "room": "bathroom"},
            {"motion": True},
            ts_to_ns(at(23, 2)),
        ),
    ]
    await client.write(lines, db)
    facts = await InfluxDayFacts(client, db).day_facts(
        site, resident, windows(at(23, 20, 30), site.timezone)
    )
    assert facts.got_up_at == at(23, 6, 42)
    assert facts.night_bathroom_visits == 2
    assert facts.away_seconds == at(23, 11, 30) - at(23, 9, 0)
