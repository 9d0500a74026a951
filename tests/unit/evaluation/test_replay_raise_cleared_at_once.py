"""A raise whose clear comes in the same batch reaches the store and is counted, however
ingest cut the batches (issue #16: one ARAS A platform replay lost the 22 Jan 19:17
bathroom raise, a timer fired by the very reading that cleared it).

The platform's path from the detectors on: the detector runtime on the event clock, the
real alert pipeline, a real SQLite store, and the alert listing `eval replay` counts
(`alert_raises` over what `eldercare alerts list --json` prints). The second stay
reactivates the alert the first one left cleared (a high-severity alert stays one record
until someone resolves it), which is the shape of the ARAS A raise."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.store import AlertStore
from alerts.store_queries import AlertFilter
from detectors.runtime import DetectorRuntime
from eldercare.clock import FakeClock
from eldercare.domain import Reading, Stream
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument
from evaluation.platform_scenarios import alert_raises
from tests.helpers.alerts import make_pipeline, policies

TZ = ZoneInfo("Europe/Amsterdam")
SITE = "bath-home"
LIMIT_S = 45 * 60  # the daytime bathroom limit


def _index() -> RegistryIndex:
    doc = RegistryDocument.model_validate(
        {
            "sites": [
                {
                    "id": SITE,
                    "kind": "home",
                    "name": "Bath home",
                    "organisation": "Test/Replay",
                    "timezone": "Europe/Amsterdam",
                    "rooms": [
                        {"id": "kitchen", "kind": "kitchen"},
                        {"id": "bathroom", "kind": "bathroom"},
                        {"id": "bedroom", "kind": "bedroom"},
                    ],
                    "residents": [{"id": "res-1", "name": "Resident", "room": "bedroom"}],
                    "devices": [
                        {"id": "pir-kitchen", "kind": "motion", "room": "kitchen"},
                        {"id": "pir-bath", "kind": "motion", "room": "bathroom"},
                    ],
                    # Only the rule under test: the hour of silence raises nothing else.
                    "detectors": {
                        k: {"enabled": False}
                        for k in ("inactivity", "not_up", "site_offline", "device_offline")
                    },
                }
            ]
        }
    )
    return RegistryIndex(doc, version=1)


def _motion(device: str, room: str, ts: float, moving: bool) -> Reading:
    return Reading(SITE, device, Stream.MOTION, ts, {"motion": moving}, ts, room, None, "native")


def _stays(days: int) -> tuple[list[Reading], list[float], list[float]]:
    """Each day at 10:00 someone goes into the bathroom and nothing is seen for 61 min;
    then the kitchen. (The readings; the raises' times; the clearing readings' times.)"""
    readings: list[Reading] = []
    raised: list[float] = []
    cleared: list[float] = []
    for day in range(days):
        start = datetime(2025, 3, 3 + day, 10, 0, tzinfo=TZ).timestamp()
        entered = start + 60
        back = entered + 61 * 60
        readings += [
            _motion("pir-kitchen", "kitchen", start, True),
            _motion("pir-kitchen", "kitchen", start + 1, False),
            _motion("pir-bath", "bathroom", entered, True),
            _motion("pir-bath", "bathroom", entered + 1, False),
            _motion("pir-kitchen", "kitchen", back, True),
            _motion("pir-kitchen", "kitchen", back + 1, False),
        ]
        raised.append(entered + LIMIT_S)
        cleared.append(back)
    return readings, raised, cleared


def _batches(readings: list[Reading], cut: str) -> list[Sequence[Reading]]:
    if cut == "one batch":
        return [readings]
    if cut == "one reading a batch":
        return [[r] for r in readings]
    # The second stay's clearing reading (which fires the timer) in a batch of its own.
    clearing = 10
    return [readings[:clearing], readings[clearing : clearing + 1], readings[clearing + 1 :]]


@pytest.mark.parametrize("cut", ["one batch", "one reading a batch", "clearing reading alone"])
async def test_a_raise_cleared_in_its_own_batch_is_stored_and_counted(
    store: AlertStore, cut: str
) -> None:
    index = _index()
    clock = FakeClock(datetime(2026, 12, 7, 12, 0, tzinfo=TZ).timestamp())  # wall time
    pipeline, service = make_pipeline(store, index, clock, policies([]))
    runtime = DetectorRuntime(lambda: index, pipeline, clock_mode="event", clock=clock)
    readings, raised, cleared = _stays(days=2)
    for batch in _batches(readings, cut):
        await runtime.handle_readings(batch)
    await runtime.stop(save=False)

    # What `eldercare alerts list --json` prints, as `eval replay` counts it.
    listing: list[dict[str, Any]] = []
    for record in await service.list_alerts(AlertFilter(limit=1_000_000)):
        detail = await service.get_alert(record.id)
        assert detail is not None
        listing.append(detail.alert.to_dict(detail.history))
    raises = alert_raises(listing)
    assert [(r["kind"], r["raised_at"]) for r in raises] == [
        ("bathroom_too_long", raised[0]),
        ("bathroom_too_long", raised[1]),
    ]
    (alert,) = listing
    changes = [
        (h["action"], (h.get("data") or {}).get("change"), h["event_time"])
        for h in alert["history"]
        if h["action"] in ("raised", "updated", "cleared")
    ]
    assert [(a, c) for a, c, _ in changes] == [
        ("raised", None),
        ("cleared", None),
        ("updated", "reactivated"),
        ("cleared", None),
    ]
    assert alert["condition"] == "cleared" and alert["status"] == "open"
    assert [_epoch(t) for a, _, t in changes if a == "cleared"] == cleared


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
