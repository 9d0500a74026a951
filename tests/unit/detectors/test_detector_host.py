"""The pure host on its own: readings in, transitions out, no event loop, no sink,
no database; time is the readings' and a fake clock's."""

from __future__ import annotations

from detectors.detector_host import DetectorHost
from eldercare.clock import FakeClock
from eldercare.domain import AlertKind, Stream, TransitionAction
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument, Site
from tests.helpers.detectors import home_site, local_ts, reading

SH = "Asia/Shanghai"
RAISE, CLEAR = TransitionAction.RAISE, TransitionAction.CLEAR


def _host(*sites: Site, mode: str = "event", clock: FakeClock | None = None) -> DetectorHost:
    index = RegistryIndex(RegistryDocument(sites=list(sites)))
    return DetectorHost(
        lambda: index,
        clock_mode="event" if mode == "event" else "wall",
        clock=clock or FakeClock(0.0),
        global_overrides=None,
        lateness_s=120.0,
        dedupe_s=900.0,
    )


def test_feeding_a_night_exit_returns_its_raise_and_clear_stamped_at_due_time() -> None:
    site = home_site(SH)
    host = _host(site)
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    out = host.feed(
        [
            reading(site, "bed-1", Stream.OCCUPANCY, t, occupied=False),
            reading(site, "bed-1", Stream.OCCUPANCY, t - 3600, occupied=True),
            reading(site, "pir-kitchen", Stream.MOTION, t + 300, motion=True),
            reading(site, "bed-1", Stream.OCCUPANCY, t + 45 * 60, occupied=True),
        ]
    )
    exits = [(x.action, x.ts) for x in out if x.kind == AlertKind.BED_EXIT_NO_RETURN]
    assert exits == [(RAISE, t + 1800), (CLEAR, t + 2700)]
    assert host.watermark == t + 45 * 60
    assert host.sites[site.id].clock == t + 45 * 60


def test_a_redelivered_batch_gives_nothing_new() -> None:
    site = home_site(SH)
    host = _host(site)
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    batch = [
        reading(site, "bed-1", Stream.OCCUPANCY, t - 3600, occupied=True),
        reading(site, "bed-1", Stream.OCCUPANCY, t, occupied=False),
    ]
    host.feed(batch)
    assert host.feed(batch) == []


def test_wall_mode_fires_timers_by_the_clock_it_is_given() -> None:
    site = home_site(SH)
    t = local_ts(SH, 2024, 5, 10, 2, 0)
    clock = FakeClock(t)
    host = _host(site, mode="wall", clock=clock)
    host.feed(
        [
            reading(site, "bed-1", Stream.OCCUPANCY, t - 3600, occupied=True),
            reading(site, "bed-1", Stream.OCCUPANCY, t, occupied=False),
        ]
    )
    removed, fired = host.fire_due(t + 3599)
    assert removed == [] and not [x for x in fired if x.kind == AlertKind.BED_EXIT_NO_RETURN]
    _, fired = host.fire_due(t + 3600)
    assert [(x.action, x.ts) for x in fired if x.kind == AlertKind.BED_EXIT_NO_RETURN] == [
        (RAISE, t + 3600)  # no movement seen: the rule's longer wait
    ]


def test_sites_restored_from_snapshots_are_built_a_few_at_each_tick() -> None:
    """A worker taking over thousands of homes builds them over several ticks, so its
    event loop (lease renewals, readers) is never held for the whole restore."""
    sites = [home_site(SH, site_id=f"home-{i}", device_suffix=f"-{i}") for i in range(5)]
    index = RegistryIndex(RegistryDocument(sites=sites), version=1)
    host = DetectorHost(
        lambda: index,
        clock_mode="wall",
        clock=FakeClock(0.0),
        global_overrides=None,
        lateness_s=120.0,
        dedupe_s=900.0,
        builds_per_tick=2,
    )
    host.stored_states = {s.id: {} for s in sites}
    built = []
    for tick in range(4):
        host.fire_due(float(tick))
        built.append(len(host.sites))
    assert built == [2, 4, 5, 5]
    assert not host.stored_states, "every stored snapshot taken into a built site"
