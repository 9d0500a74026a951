"""A whole simulation: the population, its incidents, and every message in delivery order.

`Simulation.messages()` yields `Outgoing` items in the order a broker would receive
them (delivery time, then site, then a per-site counter, so it is deterministic);
each site is generated window by window, so memory stays flat however long the run.
Nothing here does I/O: the runner publishes, the tests can simply iterate.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from device_sim.device import PERIODIC_STREAMS, Impairer, Impairments
from device_sim.encoding import Message, SiteEncoder
from device_sim.population import PopulationConfig, build_population, registry_document
from device_sim.routine import Calendar
from device_sim.scenarios import SCENARIOS, Injector, ScenarioRequest
from device_sim.sensors import SiteSensors
from device_sim.site import SimSite
from device_sim.truth import TruthRecord
from eldercare.domain import Stream
from eldercare.registry_model import RegistryDocument

TIMEZONE = "Asia/Shanghai"
WINDOW_S = 3 * 3600.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One thing for the publisher to do at `deliver_at` (event time)."""

    deliver_at: float
    site_index: int
    n: int  # per-site counter: a stable tie-break
    site_id: str
    message: Message | None = None
    ts: float = 0.0  # event time the message carries (== deliver_at unless delayed)
    control: str | None = None  # connect | cut | restore


# Heap entries: (deliver_at, site_index, n, item); tuples compare in C, and n is unique.
_Entry = tuple[float, int, int, Outgoing]


@dataclass(frozen=True, slots=True)
class SimConfig:
    homes: int = 10
    institutions: int = 0
    days: float = 1.0
    seed: int = 1
    start: float = 0.0  # event time of the first message, epoch seconds
    fmt: str = "native"
    scenarios: tuple[ScenarioRequest, ...] = ()
    incidents_per_hour: float = 0.0  # extra random incidents across the population
    impairments: Impairments = field(default_factory=Impairments)
    wearable_share: float = 0.2
    vitals_share: float = 0.3
    apprise: tuple[str, ...] = ()
    lead_s: float = 2 * 3600.0  # no incident starts earlier than this into the run
    institution_floors: int = 3
    rooms_per_floor: int = 8
    # Published in real time: availability goes out as the plain strings devices send
    # (see SiteEncoder.availability). The runner's pacing must agree.
    live: bool = False


class Simulation:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.start = cfg.start
        self.end = cfg.start + cfg.days * 86400.0
        first_day = datetime.fromtimestamp(cfg.start, ZoneInfo(TIMEZONE)).date()
        self.calendar = Calendar(first_day, TIMEZONE)
        pop = PopulationConfig(
            homes=cfg.homes,
            institutions=cfg.institutions,
            seed=cfg.seed,
            fmt=cfg.fmt,
            wearable_share=cfg.wearable_share,
            vitals_share=cfg.vitals_share,
            apprise=cfg.apprise,
            institution_floors=cfg.institution_floors,
            rooms_per_floor=cfg.rooms_per_floor,
        )
        self.sites: list[SimSite] = build_population(pop, self.calendar)
        injector = Injector(self.sites, cfg.seed, self.start, self.end, lead_s=cfg.lead_s)
        for request in cfg.scenarios:
            injector.inject(request, required=not request.optional)
        for request in self._random_incidents():
            injector.inject(request, required=False)
        self.truth: list[TruthRecord] = sorted(injector.records, key=lambda r: r.start)
        self.impairer_counts: dict[str, int] = {}

    def _random_incidents(self) -> list[ScenarioRequest]:
        rate = self.cfg.incidents_per_hour
        if rate <= 0:
            return []
        rng = random.Random(f"{self.cfg.seed}|incidents")
        hours = (self.end - self.start) / 3600.0
        names = sorted(SCENARIOS)
        return [ScenarioRequest(rng.choice(names)) for _ in range(int(rate * hours))]

    def registry(self) -> RegistryDocument:
        return registry_document(self.sites)

    @property
    def home_days(self) -> float:
        return len(self.sites) * (self.end - self.start) / 86400.0

    def messages(self) -> Iterator[Outgoing]:
        merged = heapq.merge(*(self._site_stream(i) for i in range(len(self.sites))))
        return (entry[3] for entry in merged)

    def _site_stream(self, index: int) -> Iterator[_Entry]:
        site = self.sites[index]
        cfg = self.cfg
        impairer = Impairer(cfg.impairments, random.Random(f"{cfg.seed}|{site.id}|delivery"))
        sensors = SiteSensors(site, cfg.seed, self.start, impairer)
        encoder = SiteEncoder(site)
        n = 0

        def out(at: float, **kw: object) -> _Entry:
            nonlocal n
            n += 1
            return (at, index, n, Outgoing(at, index, n, site.id, **kw))  # type: ignore[arg-type]

        yield out(self.start, control="connect")
        for m in encoder.availability(None if cfg.live else self.start):
            yield out(self.start, message=m, ts=self.start)
        for f in sensors.initial_facts(self.start):
            yield out(self.start, message=encoder.encode(f), ts=f.ts)
        heap: list[_Entry] = []
        for o in site.outages:
            if o.cut_connection and self.start <= o.start < self.end:
                heapq.heappush(heap, out(o.start, control="cut"))
                heapq.heappush(heap, out(o.end, control="restore"))
        periods = {d.id: (d.heartbeat_period, d.report_interval_s) for d in site.devices}
        last_heartbeat: dict[str, float] = {}  # event time of each device's last one sent
        a = self.start
        while a < self.end:
            b = min(a + WINDOW_S, self.end)
            radio = sensors.radio_dropouts(a, b)
            for f in sensors.facts(a, b):
                message = encoder.encode(f)
                keep = False
                if f.stream is Stream.HEARTBEAT:
                    # At most one heartbeat in a row is lost or late (a dropout or a lost
                    # message): two would be a device_offline the truth does not know of.
                    # Losing this one would leave the gap from the last one sent (or the
                    # run's start, when every device reports) to the next one.
                    prev = last_heartbeat.get(f.device_id, self.start)
                    period, interval = periods[f.device_id]
                    keep = f.ts + period - prev >= 2 * interval - 20.0
                spans = radio.get(f.device_id)
                if (
                    spans
                    and not keep
                    and f.stream in PERIODIC_STREAMS
                    and any(s <= f.ts < e for s, e in spans)
                ):
                    continue  # lost in a radio dropout
                deliveries = impairer.deliveries(f.ts, f.stream, keep)
                if f.stream is Stream.HEARTBEAT and deliveries and deliveries[0] - f.ts < 10.0:
                    last_heartbeat[f.device_id] = f.ts
                for at in deliveries:
                    heapq.heappush(heap, out(at, message=message, ts=f.ts))
            while heap and heap[0][0] < b:
                yield heapq.heappop(heap)
            a = b
        while heap:
            yield heapq.heappop(heap)
        for k, v in impairer.counts.items():
            self.impairer_counts[k] = self.impairer_counts.get(k, 0) + v
