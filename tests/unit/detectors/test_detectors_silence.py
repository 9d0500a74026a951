"""A whole site going quiet against one device dying: `site_offline` and `device_offline`
together, on event time (heartbeats scripted per device; nothing sleeps)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from detectors.device_offline import DeviceOfflineRule
from detectors.site_detectors import SiteDetectors
from detectors.site_offline import SiteOfflineRule
from eldercare.domain import AlertKind, Reading, Stream, Transition, TransitionAction
from eldercare.registry_model import Site
from tests.helpers.detectors import context, home_site, local_ts, reading

SH = "Asia/Shanghai"
RAISE, CLEAR, UPDATE = TransitionAction.RAISE, TransitionAction.CLEAR, TransitionAction.UPDATE
HOUR = 3600.0

# A home as the simulator builds one: the gateway every 5 min, radar and bed every
# 15 min, battery sensors hourly.
HOME: list[dict[str, Any]] = [
    {"id": "gw", "kind": "gateway", "report_interval_s": 300},
    {"id": "radar-1", "kind": "fall_radar", "room": "bathroom", "report_interval_s": 900},
    {"id": "bed-1", "kind": "bed", "room": "bedroom", "report_interval_s": 900},
    {"id": "pir-bed", "kind": "motion", "room": "bedroom"},
    {"id": "pir-living", "kind": "motion", "room": "living"},
    {"id": "pir-kitchen", "kind": "motion", "room": "kitchen"},
    {"id": "pir-bath", "kind": "motion", "room": "bathroom"},
    {"id": "door-front", "kind": "door", "room": "entrance", "outer_door": True},
    {"id": "sos-1", "kind": "sos_button", "room": "bedroom"},
]
# Every device hourly (zigbee battery sensors, no gateway of their own).
RARE: list[dict[str, Any]] = [
    {"id": "pir-bed", "kind": "motion", "room": "bedroom"},
    {"id": "pir-living", "kind": "motion", "room": "living"},
    {"id": "pir-kitchen", "kind": "motion", "room": "kitchen"},
    {"id": "door-front", "kind": "door", "room": "entrance", "outer_door": True},
    {"id": "sos-1", "kind": "sos_button", "room": "bedroom"},
]

T0 = local_ts(SH, 2024, 5, 10, 8, 0)
Silent = Callable[[str, float], bool]


def heartbeats(site: Site, start: float, end: float, silent: Silent, seed: int) -> list[Reading]:
    """Every device reports at `start`, then every 0.95 × its interval from a random
    phase, except while `silent(device, ts)`."""
    rng = random.Random(seed)
    out = [reading(site, d.id, Stream.HEARTBEAT, start) for d in site.devices]
    for d in site.devices:
        period = 0.95 * d.report_interval_s
        ts = start + rng.uniform(1, period)
        while ts < end:
            if not silent(d.id, ts):
                out.append(reading(site, d.id, Stream.HEARTBEAT, round(ts, 3)))
            ts += period
    return sorted(out, key=lambda r: r.ts)


def _rules(site: Site, states: Mapping[str, Any] | None = None) -> SiteDetectors:
    ctx = context(site)
    sd = SiteDetectors(
        site, {"device_offline": DeviceOfflineRule(ctx), "site_offline": SiteOfflineRule(ctx)}
    )
    if states is not None:
        sd.restore(states)
    return sd


def run(
    site: Site, readings: list[Reading], end: float, *, restore_each: bool = False
) -> list[Transition]:
    """Apply the readings (timers fire in between at their due times), then advance to
    `end`; with `restore_each`, every reading goes to rules restored from a snapshot."""
    sd = _rules(site)
    out: list[Transition] = []
    for r in readings:
        if restore_each:
            sd = _rules(site, sd.snapshot())
        out += sd.apply(r)
    out += sd.advance(end)
    return out


def of(out: list[Transition], kind: AlertKind) -> list[tuple[TransitionAction, float]]:
    return [(x.action, x.ts) for x in out if x.kind == kind]


def last_before(readings: list[Reading], device_id: str, ts: float) -> float:
    return max(r.ts for r in readings if r.device_id == device_id and r.ts < ts)


# --- the whole home goes quiet -------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_outage_raises_one_site_offline_first_and_no_device_offline(seed: int) -> None:
    site = home_site(SH, devices=HOME)
    cut, back = T0 + 6 * HOUR, T0 + 10 * HOUR
    rs = heartbeats(site, T0, T0 + 16 * HOUR, lambda d, ts: cut <= ts < back, seed)
    out = run(site, rs, T0 + 16 * HOUR)
    heard = max(r.ts for r in rs if r.ts < cut)
    first_back = min(r.ts for r in rs if r.ts >= back)
    raised = of(out, AlertKind.SITE_OFFLINE)
    assert [a for a, _ in raised] == [RAISE, CLEAR]
    # Within factor × the second-shortest interval (radar, bed: 900 s) of the last message,
    # not 2 × the slowest device's hour as when every device had to fall due.
    assert heard < raised[0][1] <= heard + 2 * 900
    assert raised[1][1] == first_back
    # No device was ever more than silent with the rest of the home: no device_offline,
    # during the outage nor while the hourly sensors report in again after it.
    assert of(out, AlertKind.DEVICE_OFFLINE) == []
    assert raised[0][1] < heard + 2 * 3600 - 1800  # the old rule's bound, for contrast


def test_outage_with_the_gateways_last_will() -> None:
    """The broker's Will for the gateway counts as that device overdue at once; the site
    is offline when one more device falls due, and the gateway is not raised alone."""
    site = home_site(SH, devices=HOME)
    cut, back = T0 + 6 * HOUR, T0 + 9 * HOUR
    rs = heartbeats(site, T0, T0 + 12 * HOUR, lambda d, ts: cut <= ts < back, 3)
    heard = max(r.ts for r in rs if r.ts < cut)
    will = reading(site, "gw", Stream.AVAILABILITY, heard, online=False)
    rs = sorted([*rs, will], key=lambda r: r.ts)
    out = run(site, rs, T0 + 12 * HOUR)
    next_due = min(last_before(rs, d, cut) + 2 * 900 for d in ("radar-1", "bed-1"))
    assert of(out, AlertKind.SITE_OFFLINE)[0] == (RAISE, next_due)
    assert of(out, AlertKind.DEVICE_OFFLINE) == []


def test_a_device_that_does_not_come_back_after_an_outage_is_raised_later() -> None:
    site = home_site(SH, devices=HOME)
    cut, back = T0 + 6 * HOUR, T0 + 9 * HOUR

    def silent(d: str, ts: float) -> bool:
        return cut <= ts < back or (d == "sos-1" and ts >= cut)

    rs = heartbeats(site, T0, T0 + 16 * HOUR, silent, 5)
    out = run(site, rs, T0 + 16 * HOUR)
    first_back = min(r.ts for r in rs if r.ts >= back)
    offline = [x for x in out if x.kind == AlertKind.DEVICE_OFFLINE]
    # Timed afresh from the return: 2 h for the hourly button, then the next message.
    assert [(x.action, x.device_id) for x in offline] == [(RAISE, "sos-1")]
    assert first_back + 2 * HOUR <= offline[0].ts <= first_back + 2 * HOUR + 300


# --- one device dies while the rest of the home talks --------------------------------------


@pytest.mark.parametrize(("device", "interval"), [("sos-1", 3600), ("bed-1", 900), ("gw", 300)])
@pytest.mark.parametrize("seed", range(4))
def test_one_device_dying_raises_device_offline_and_no_site_offline(
    device: str, interval: float, seed: int
) -> None:
    site = home_site(SH, devices=HOME)
    dies = T0 + 5 * HOUR
    rs = heartbeats(site, T0, T0 + 12 * HOUR, lambda d, ts: d == device and ts >= dies, seed)
    out = run(site, rs, T0 + 12 * HOUR)
    due = last_before(rs, device, dies) + 2 * interval
    assert of(out, AlertKind.SITE_OFFLINE) == []
    offline = [x for x in out if x.kind == AlertKind.DEVICE_OFFLINE]
    assert [(x.action, x.device_id) for x in offline] == [(RAISE, device)]
    # Raised by the first message from the rest of the home after its deadline: the
    # gateway's 5 min (or the radar's and bed's 15 min, when it is the gateway that died).
    wait = 300 if device != "gw" else 900
    assert due <= offline[0].ts <= due + wait
    assert offline[0].ts == min(r.ts for r in rs if r.ts >= due)
    assert offline[0].details["reason"] == "silent"


def test_a_device_dying_comes_back_and_clears() -> None:
    site = home_site(SH, devices=HOME)
    dies, revives = T0 + 3 * HOUR, T0 + 7 * HOUR
    rs = heartbeats(site, T0, T0 + 9 * HOUR, lambda d, ts: d == "bed-1" and dies <= ts < revives, 1)
    out = run(site, rs, T0 + 9 * HOUR)
    back = min(r.ts for r in rs if r.device_id == "bed-1" and r.ts >= revives)
    assert [a for a, ts in of(out, AlertKind.DEVICE_OFFLINE)] == [RAISE, CLEAR]
    assert of(out, AlertKind.DEVICE_OFFLINE)[1][1] == back


def test_availability_offline_while_the_home_talks_is_a_device_offline() -> None:
    site = home_site(SH, devices=HOME)
    rs = heartbeats(
        site, T0, T0 + 6 * HOUR, lambda d, ts: d == "radar-1" and ts >= T0 + 3 * HOUR, 2
    )
    lwt = reading(site, "radar-1", Stream.AVAILABILITY, T0 + 3 * HOUR, online=False)
    rs = sorted([*rs, lwt], key=lambda r: r.ts)
    out = run(site, rs, T0 + 6 * HOUR)
    offline = [x for x in out if x.kind == AlertKind.DEVICE_OFFLINE]
    after = min(r.ts for r in rs if r.ts > lwt.ts)  # the next message from the home
    assert [(x.action, x.device_id, x.ts) for x in offline] == [(RAISE, "radar-1", after)]
    assert offline[0].details["reason"] == "availability offline"
    assert of(out, AlertKind.SITE_OFFLINE) == []


# --- homes whose devices all report rarely -------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_rare_reporters_outage(seed: int) -> None:
    site = home_site(SH, devices=RARE)
    cut, back = T0 + 6 * HOUR, T0 + 12 * HOUR
    rs = heartbeats(site, T0, T0 + 20 * HOUR, lambda d, ts: cut <= ts < back, seed)
    out = run(site, rs, T0 + 20 * HOUR)
    heard = max(r.ts for r in rs if r.ts < cut)
    raised = of(out, AlertKind.SITE_OFFLINE)
    assert [a for a, _ in raised] == [RAISE, CLEAR]
    second = sorted(last_before(rs, d.id, cut) + 2 * HOUR for d in site.devices)[1]
    assert raised[0][1] == second <= heard + 2 * HOUR
    assert of(out, AlertKind.DEVICE_OFFLINE) == []


@pytest.mark.parametrize("seed", range(6))
def test_rare_reporters_one_device_dying(seed: int) -> None:
    site = home_site(SH, devices=RARE)
    dies = T0 + 5 * HOUR
    rs = heartbeats(site, T0, T0 + 12 * HOUR, lambda d, ts: d == "sos-1" and ts >= dies, seed)
    out = run(site, rs, T0 + 12 * HOUR)
    due = last_before(rs, "sos-1", dies) + 2 * HOUR
    assert of(out, AlertKind.SITE_OFFLINE) == []
    offline = of(out, AlertKind.DEVICE_OFFLINE)
    # The cost of telling it from an outage: raised at the next hourly report of another
    # device, at most 0.95 h after its deadline.
    assert len(offline) == 1 and offline[0][0] == RAISE
    assert offline[0][1] == min(r.ts for r in rs if r.ts >= due) <= due + 0.95 * HOUR


def test_a_single_device_site_is_offline_at_its_deadline() -> None:
    site = home_site(
        SH,
        devices=[
            {"id": "pir-living", "kind": "motion", "room": "living", "report_interval_s": 600}
        ],
    )
    rs = [reading(site, "pir-living", Stream.HEARTBEAT, T0 + k * 570) for k in range(5)]
    out = run(site, rs, T0 + 3 * HOUR)
    assert of(out, AlertKind.SITE_OFFLINE) == [(RAISE, rs[-1].ts + 1200)]
    assert of(out, AlertKind.DEVICE_OFFLINE) == []


def test_the_last_device_standing() -> None:
    """Devices that died one by one while the site still spoke do not count; when the last
    one reporting falls silent too, the site is offline."""
    site = home_site(SH, devices=RARE)
    dies = {"pir-bed": 1, "pir-kitchen": 4, "door-front": 7, "sos-1": 10, "pir-living": 13}

    def silent(d: str, ts: float) -> bool:
        return ts >= T0 + dies[d] * HOUR

    rs = heartbeats(site, T0, T0 + 18 * HOUR, silent, 4)
    out = run(site, rs, T0 + 18 * HOUR)
    offline = [(x.action, x.device_id) for x in out if x.kind == AlertKind.DEVICE_OFFLINE]
    assert offline == [
        (RAISE, "pir-bed"),
        (UPDATE, "pir-kitchen"),
        (UPDATE, "door-front"),
        (UPDATE, "sos-1"),
    ]
    last = last_before(rs, "pir-living", T0 + 13 * HOUR)
    assert of(out, AlertKind.SITE_OFFLINE) == [(RAISE, last + 2 * HOUR)]


def test_rare_reporters_several_devices_dying_together() -> None:
    """The cost of the rule: four hourly sensors dying at once (a zigbee bridge) while the
    one left reports hourly cannot be told from an outage until it speaks. One site_offline,
    cleared by it; the four are then timed afresh and raised, with no second site_offline."""
    site = home_site(SH, devices=RARE)
    dies = T0 + 3 * HOUR
    rs = heartbeats(site, T0, T0 + 14 * HOUR, lambda d, ts: d != "pir-living" and ts >= dies, 6)
    out = run(site, rs, T0 + 14 * HOUR)
    assert [a for a, _ in of(out, AlertKind.SITE_OFFLINE)] == [RAISE, CLEAR]
    cleared = of(out, AlertKind.SITE_OFFLINE)[1][1]
    offline = [x for x in out if x.kind == AlertKind.DEVICE_OFFLINE]
    assert sorted(str(x.device_id) for x in offline if x.action != CLEAR) == [
        "door-front",
        "pir-bed",
        "pir-kitchen",
        "sos-1",
    ]
    assert all(cleared + 2 * HOUR <= x.ts <= cleared + 3 * HOUR for x in offline)


# --- restore mid-episode -------------------------------------------------------------------


@pytest.mark.parametrize("devices", [HOME, RARE])
def test_restoring_at_every_reading_changes_nothing(devices: list[dict[str, Any]]) -> None:
    """Snapshots taken mid-outage, with devices held overdue, mid-lone-death: a restored
    pair of rules goes on exactly as the one never stopped."""
    site = home_site(SH, devices=devices)
    cut, back = T0 + 6 * HOUR, T0 + 10 * HOUR

    def silent(d: str, ts: float) -> bool:
        return cut <= ts < back or (d == "sos-1" and ts >= T0 + 11 * HOUR)

    rs = heartbeats(site, T0, T0 + 18 * HOUR, silent, 7)
    rs.append(reading(site, "pir-living", Stream.AVAILABILITY, T0 + 2 * HOUR, online=False))
    rs.sort(key=lambda r: r.ts)
    whole = run(site, rs, T0 + 18 * HOUR)
    kinds = {(x.kind, x.action) for x in whole}
    assert (AlertKind.SITE_OFFLINE, RAISE) in kinds and (AlertKind.DEVICE_OFFLINE, RAISE) in kinds
    assert run(site, rs, T0 + 18 * HOUR, restore_each=True) == whole


def test_a_snapshot_from_before_timed_from_restores() -> None:
    """site_offline snapshots written before `timed_from` existed load."""
    site = home_site(SH, devices=RARE)
    rule = SiteOfflineRule(context(site))
    rule.restore(
        {
            "started_at": T0,
            "last_seen": {"pir-bed": T0},
            "offline_by_lwt": {},
            "open_since": None,
            "last_evidence": None,
        }
    )
    assert rule.next_due() == T0 + 2 * HOUR  # the second deadline: pir-bed and the never heard
