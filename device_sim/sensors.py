"""From what residents do to what a site's sensors report.

`SiteSensors.facts(a, b)` gives every fact the site's devices observe in [a, b),
in event-time order, before any delivery impairment: PIR detections (Aqara-like:
a 60 s blind time, clear 90 s after the last detection), bed occupancy changes,
door contacts, radar presence and fall status, vital signs while in bed,
accelerometer bursts when the wearer moves, heartbeats, battery and link reports.
Every random draw is seeded by what it belongs to (a segment, a visit, a device
and a tick), so any window can be generated alone and gives the same facts.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from device_sim import accel
from device_sim.device import BATTERY_REPORT_S, Impairer, SimDevice
from device_sim.resident import TRAITS, Activity, ResidentSpec, Segment
from device_sim.routine import Visit
from device_sim.site import SimSite
from eldercare.domain import DeviceKind, Stream

PIR_BLIND_S = 60.0
PIR_CLEAR_S = 90.0
VITALS_EVERY_S = 60.0
MARGIN_S = 1800.0  # history generated before a window so state machines are warm
# Chance that the radar reports maybe_fall when someone walks in (a known quirk).
RADAR_MAYBE_FALL_RATE = 0.01


@dataclass(frozen=True, slots=True)
class Fact:
    ts: float
    device_id: str
    stream: Stream
    fields: dict[str, Any]

    @property
    def order(self) -> tuple[float, str, str]:
        return (self.ts, self.device_id, self.stream.value)


class SiteSensors:
    def __init__(
        self, site: SimSite, seed: int, origin: float, impairer: Impairer | None = None
    ) -> None:
        self.site = site
        self.seed = seed
        self.origin = origin
        self.impairer = impairer
        self._pir = {d.room: d for d in site.devices_of(DeviceKind.MOTION)}
        self._radar = {d.room: d for d in site.devices_of(DeviceKind.FALL_RADAR)}
        self._doors = {d.room: d for d in site.devices_of(DeviceKind.DOOR) if not d.outer_door}
        self._outer = site.outer_door

    # -- public ---------------------------------------------------------------

    def initial_facts(self, t: float) -> list[Fact]:
        """State reports at the run's start, as devices send when they (re)join."""
        out: list[Fact] = []
        for r in self.site.residents:
            seg = self.site.routines[r.id].at(t)
            bed = self.site.resident_device(r.id, DeviceKind.BED)
            if bed is not None:
                out.append(Fact(t, bed.id, Stream.OCCUPANCY, {"occupied": seg.in_bed}))
        present = self._present_rooms(t)
        for d in self.site.devices:
            if d.kind is DeviceKind.DOOR:
                out.append(Fact(t, d.id, Stream.CONTACT, {"open": False}))
            elif d.kind is DeviceKind.MOTION:
                out.append(Fact(t, d.id, Stream.MOTION, {"motion": False}))
            elif d.kind is DeviceKind.FALL_RADAR:
                out.append(Fact(t, d.id, Stream.FALL, {"status": "none"}))
                out.append(Fact(t, d.id, Stream.PRESENCE, {"present": d.room in present}))
            if d.has_battery:
                pct = d.battery_at(t, self.origin)
                out.append(Fact(t, d.id, Stream.BATTERY, {"percent": pct}))
        return sorted(out, key=lambda f: f.order)

    def facts(self, a: float, b: float) -> list[Fact]:
        start = a - MARGIN_S
        out: list[Fact] = []
        detections: dict[str, list[float]] = defaultdict(list)
        presence: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for r in self.site.residents:
            segments, visits = self.site.routines[r.id].timeline(start, b)
            self._resident(r, segments, detections, presence, out)
            self._visits(r, visits, detections, presence, out)
        for device_id, times in detections.items():
            out.extend(_pir_reports(device_id, sorted(times)))
        for room, spans in presence.items():
            radar = self._radar.get(room)
            if radar is not None:
                out.extend(self._presence(radar, spans))
        for d in self.site.devices:
            out.extend(self._periodic(d, a, b))
        out.extend(f for f in self.site.extra_facts if isinstance(f, Fact) and a <= f.ts < b)
        kept = [f for f in out if a <= f.ts < b]
        kept = self._silence(kept, a, b)
        kept.sort(key=lambda f: f.order)
        return kept

    # -- residents --------------------------------------------------------------

    def _room(self, r: ResidentSpec, place: str | None) -> str | None:
        return None if place is None else r.places.get(place)

    def _resident(
        self,
        r: ResidentSpec,
        segments: list[Segment],
        detections: dict[str, list[float]],
        presence: dict[str, list[tuple[float, float]]],
        out: list[Fact],
    ) -> None:
        bed = self.site.resident_device(r.id, DeviceKind.BED)
        wearable = self.site.resident_device(r.id, DeviceKind.WEARABLE)
        vitals = self.site.resident_device(r.id, DeviceKind.VITALS)
        prev: Segment | None = None
        for seg in segments:
            room = self._room(r, seg.place)
            if room is not None:
                presence[room].append((seg.start, seg.end))
                pir = self._pir.get(room)
                if pir is not None:
                    detections[pir.id].extend(self._motion(r, seg))
                radar = self._radar.get(room)
                if radar is not None and seg.activity is Activity.ACTIVE and not seg.scripted:
                    out.extend(self._radar_quirk(radar, r, seg))
            if vitals is not None and seg.in_bed:
                out.extend(self._vitals(vitals, seg))
            if prev is not None:
                self._transition(r, prev, seg, bed, wearable, detections, out)
            prev = seg

    def _motion(self, r: ResidentSpec, seg: Segment) -> list[float]:
        mean = TRAITS[seg.activity].motion_mean_s
        if mean is None:
            return []
        rng = random.Random(f"{self.seed}|{r.id}|{seg.start:.3f}|pir")
        if seg.in_bed:
            t = seg.start + rng.expovariate(1 / mean)
        else:
            t = seg.start + rng.uniform(0.5, 3.0)  # walking in is movement
        times: list[float] = []
        while t < seg.end:
            times.append(t)
            t += rng.expovariate(1 / mean)
        return times

    def _transition(
        self,
        r: ResidentSpec,
        prev: Segment,
        seg: Segment,
        bed: SimDevice | None,
        wearable: SimDevice | None,
        detections: dict[str, list[float]],
        out: list[Fact],
    ) -> None:
        t = seg.start
        if bed is not None and prev.in_bed != seg.in_bed:
            out.append(Fact(t, bed.id, Stream.OCCUPANCY, {"occupied": seg.in_bed}))
        prev_room, room = self._room(r, prev.place), self._room(r, seg.place)
        if prev_room != room:
            if room is not None and (door := self._doors.get(room)) is not None:
                out.append(Fact(t - 4.0, door.id, Stream.CONTACT, {"open": True}))
                out.append(Fact(t + 2.0, door.id, Stream.CONTACT, {"open": False}))
            if prev_room is not None and (door := self._doors.get(prev_room)) is not None:
                out.append(Fact(t - 3.0, door.id, Stream.CONTACT, {"open": True}))
                out.append(Fact(t + 3.0, door.id, Stream.CONTACT, {"open": False}))
            if self._outer is not None and (prev_room is None) != (room is None):
                leaving = room is None
                opened = t - 6.0 if leaving else t
                out.append(Fact(opened, self._outer.id, Stream.CONTACT, {"open": True}))
                out.append(Fact(opened + 9.0, self._outer.id, Stream.CONTACT, {"open": False}))
                entrance = self._pir.get(r.places.get("entrance", ""))
                if entrance is not None:
                    detections[entrance.id].append(t - 12.0 if leaving else t + 2.0)
        if wearable is not None and prev_room is not None and room is not None:
            out.extend(self._wearable_moves(wearable, prev, seg, prev_room != room))

    def _wearable_moves(
        self, wearable: SimDevice, prev: Segment, seg: Segment, moved: bool
    ) -> list[Fact]:
        src, dst = TRAITS[prev.activity].posture, TRAITS[seg.activity].posture
        if seg.activity is Activity.FALLEN or prev.activity is Activity.FALLEN:
            return []  # incident bursts come from the scenario
        rng = random.Random(f"{self.seed}|{wearable.id}|{seg.start:.3f}|acc")
        batches: list[list[list[float]]] = []
        before, after = accel.gravity(src, rng), accel.gravity(dst, rng)
        if src != dst and src == "upright":
            batches = [accel.walk(rng, before), accel.change_posture(before, after, rng)]
        elif src != dst:
            batches = [accel.change_posture(before, after, rng), accel.walk(rng, after)]
        elif moved:
            batches = [accel.walk(rng), accel.walk(rng)]
        t0 = seg.start - len(batches)
        return [
            Fact(t0 + i, wearable.id, Stream.ACCEL, {"rate_hz": accel.RATE_HZ, "samples": b})
            for i, b in enumerate(batches)
        ]

    def _radar_quirk(self, radar: SimDevice, r: ResidentSpec, seg: Segment) -> list[Fact]:
        rng = random.Random(f"{self.seed}|{r.id}|{seg.start:.3f}|radar")
        if seg.end - seg.start < 90 or rng.random() >= RADAR_MAYBE_FALL_RATE:
            return []
        t = seg.start + rng.uniform(15, 40)
        return [
            Fact(t, radar.id, Stream.FALL, {"status": "maybe_fall"}),
            Fact(t + rng.uniform(8, 20), radar.id, Stream.FALL, {"status": "none"}),
        ]

    def _vitals(self, device: SimDevice, seg: Segment) -> list[Fact]:
        rng = random.Random(f"{self.seed}|{device.id}|{seg.start:.3f}|vitals")
        asleep = seg.activity is Activity.ASLEEP
        base_hr = 58.0 + (sum(map(ord, device.id)) % 14) - (3.0 if asleep else 0.0)
        base_br = 13.0 + (sum(map(ord, device.id)) % 5) - (1.0 if asleep else 0.0)
        first = math.ceil((seg.start + 30.0 - self.origin) / VITALS_EVERY_S)
        out: list[Fact] = []
        k = first
        while (t := self.origin + k * VITALS_EVERY_S + device.phase % 60) < seg.end:
            hr = base_hr + 2.5 * math.sin(t / 1900.0) + rng.gauss(0, 1.2)
            br = base_br + 0.8 * math.sin(t / 2300.0) + rng.gauss(0, 0.6)
            for o in self.site.vitals_overrides:
                if o.device_id == device.id and o.start <= t < o.end:
                    hr = o.heart_rate + rng.gauss(0, 1.0)
                    br = o.breathing_rate + rng.gauss(0, 0.4)
            fields = {"heart_rate": round(hr, 1), "breathing_rate": round(br, 1)}
            out.append(Fact(t, device.id, Stream.VITALS, fields))
            k += 1
        return out

    def _visits(
        self,
        r: ResidentSpec,
        visits: list[Visit],
        detections: dict[str, list[float]],
        presence: dict[str, list[tuple[float, float]]],
        out: list[Fact],
    ) -> None:
        for v in visits:
            room = r.places.get(v.place)
            if room is None:
                continue
            presence[room].append((v.start, v.end))
            rng = random.Random(f"{self.seed}|{r.id}|{v.start:.3f}|visit")
            pir = self._pir.get(room)
            if pir is not None:
                t = v.start + rng.uniform(1, 5)
                while t < v.end:
                    detections[pir.id].append(t)
                    t += rng.expovariate(1 / 70.0)
            if v.through_door and self._outer is not None:
                entrance = self._pir.get(r.places.get("entrance", ""))
                for at in (v.start - 30.0, v.end):
                    out.append(Fact(at, self._outer.id, Stream.CONTACT, {"open": True}))
                    out.append(Fact(at + 8.0, self._outer.id, Stream.CONTACT, {"open": False}))
                    if entrance is not None:
                        detections[entrance.id].append(at + 3.0)

    def _presence(self, radar: SimDevice, spans: list[tuple[float, float]]) -> list[Fact]:
        merged: list[list[float]] = []
        for s, e in sorted(spans):
            if merged and s <= merged[-1][1] + 30.0:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        out: list[Fact] = []
        for s, e in merged:
            out.append(Fact(s + 2.0, radar.id, Stream.PRESENCE, {"present": True}))
            out.append(Fact(e + 15.0, radar.id, Stream.PRESENCE, {"present": False}))
        return out

    def _present_rooms(self, t: float) -> set[str]:
        rooms: set[str] = set()
        for r in self.site.residents:
            room = self._room(r, self.site.routines[r.id].at(t).place)
            if room is not None:
                rooms.add(room)
        return rooms

    # -- devices ------------------------------------------------------------------

    def _periodic(self, d: SimDevice, a: float, b: float) -> list[Fact]:
        out = [
            Fact(t, d.id, Stream.HEARTBEAT, {"seq": k})
            for k, t in d.heartbeat_times(a, b, self.origin)
        ]
        if d.kind is DeviceKind.GATEWAY:
            return out
        if d.kind is DeviceKind.CLIMATE:
            out += [
                Fact(t + 0.5, d.id, Stream.TEMPERATURE, {"celsius": indoor_celsius(t, d.phase)})
                for _, t in d.heartbeat_times(a, b, self.origin)
                if not any(s <= t < e for s, e in self.site.scripted_climate)
            ]
        k = math.ceil((a - self.origin - d.phase) / BATTERY_REPORT_S)
        while (t := self.origin + d.phase + k * BATTERY_REPORT_S + 7.0) < b:
            if t >= a:
                if d.has_battery:
                    pct = d.battery_at(t, self.origin)
                    out.append(Fact(t, d.id, Stream.BATTERY, {"percent": pct}))
                if not d.z2m:
                    out.append(Fact(t + 1.0, d.id, Stream.LINK, {"linkquality": d.link_at(t)}))
            k += 1
        if d.battery_low_from is not None and a <= d.battery_low_from < b:
            pct = d.battery_at(d.battery_low_from, self.origin)
            out.append(Fact(d.battery_low_from, d.id, Stream.BATTERY, {"percent": pct}))
        if d.battery_replaced_at is not None and a <= d.battery_replaced_at < b:
            pct = d.battery_at(d.battery_replaced_at, self.origin)
            out.append(Fact(d.battery_replaced_at, d.id, Stream.BATTERY, {"percent": pct}))
        return out

    def _silence(self, facts: list[Fact], a: float, b: float) -> list[Fact]:
        """Drop what devices could not send in incident outages. (Radio dropouts, which
        lose periodic reports only, are applied with delivery: `radio_dropouts`.)"""
        gaps: dict[str | None, list[tuple[float, float]]] = defaultdict(list)
        for o in self.site.outages:
            if o.end > a and o.start < b:
                gaps[o.device_id].append((o.start, o.end))
        if not gaps:
            return facts
        everyone = gaps.get(None, [])

        def silent(f: Fact) -> bool:
            spans = everyone + gaps.get(f.device_id, [])
            return any(s <= f.ts < e for s, e in spans)

        return [f for f in facts if not silent(f)]

    def radio_dropouts(self, a: float, b: float) -> dict[str, list[tuple[float, float]]]:
        """Short radio outages per device in [a, b) (the window `facts(a, b)` covered)."""
        out: dict[str, list[tuple[float, float]]] = {}
        if self.impairer is None:
            return out
        day_seed = f"{self.seed}|{self.site.id}|{a:.0f}"
        for d in self.site.devices:
            spans = self.impairer.dropouts(d, day_seed, a, b)
            if spans:
                out[d.id] = spans
        return out


def indoor_celsius(t: float, phase: float) -> float:
    """An ordinary flat's air: 21-25 °C over the day (heated or cooled as needed)."""
    return round(23.0 + 2.0 * math.sin(2 * math.pi * (t + phase) / 86400.0), 1)


def _pir_reports(device_id: str, times: list[float]) -> list[Fact]:
    out: list[Fact] = []
    occupied = False
    last_report = -math.inf
    last_detection = -math.inf
    for t in times:
        if occupied and t > last_detection + PIR_CLEAR_S:
            out.append(
                Fact(last_detection + PIR_CLEAR_S, device_id, Stream.MOTION, {"motion": False})
            )
            occupied = False
        if t - last_report >= PIR_BLIND_S:
            out.append(Fact(t, device_id, Stream.MOTION, {"motion": True}))
            last_report = t
            occupied = True
        last_detection = t
    if occupied:
        out.append(Fact(last_detection + PIR_CLEAR_S, device_id, Stream.MOTION, {"motion": False}))
    return out
