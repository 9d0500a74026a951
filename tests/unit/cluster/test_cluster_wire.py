"""Partitions and the wire format of the cluster's streams (no daemons)."""

from __future__ import annotations

import dataclasses
import zlib

import pytest

from cluster.partitions import fair_share, partition_of, readings_subject
from cluster.wire import (
    WireError,
    reading_bytes,
    reading_from,
    transition_bytes,
    transition_from,
    transition_id,
)
from eldercare.domain import (
    AlertKind,
    Evidence,
    Reading,
    Severity,
    Stream,
    Transition,
    TransitionAction,
)
from eldercare.evidence import EvidenceCode, seen


def test_a_site_always_lands_in_the_same_partition() -> None:
    # crc32 is the same in every process (unlike the salted hash()).
    assert partition_of("hh-3-2-401", 64) == zlib.crc32(b"hh-3-2-401") % 64
    spread = {partition_of(f"home-{i}", 64) for i in range(2000)}
    assert spread == set(range(64)), "2,000 homes reach every partition"
    assert readings_subject(7) == "eldercare.readings.7"
    with pytest.raises(ValueError):
        partition_of("x", 0)


@pytest.mark.parametrize(
    ("partitions", "workers", "share"),
    [(64, 1, 64), (64, 3, 22), (64, 64, 1), (4, 8, 1), (64, 0, 64)],
)
def test_fair_share_leaves_room_for_every_partition(
    partitions: int, workers: int, share: int
) -> None:
    assert fair_share(partitions, workers) == share
    assert fair_share(partitions, workers) * max(1, workers) >= partitions


def test_a_reading_survives_the_wire() -> None:
    r = Reading(
        "s1", "pir-1", Stream.MOTION, 1_780_000_000.25, {"motion": True, "lux": 12.5},
        received_at=1_780_000_001.0, room_id="living", resident_id="r1", source="z2m",
        time_from_payload=False,
    )  # fmt: skip
    assert reading_from(reading_bytes(r)) == r


def test_a_transition_with_observations_survives_the_wire() -> None:
    ev = Evidence(
        1_780_000_000.0, "bat-1", "battery", "battery 12%", "bedroom",
        observations=(seen(EvidenceCode.BATTERY, percent=12),),
    )  # fmt: skip
    t = Transition(
        TransitionAction.RAISE, AlertKind.LOW_BATTERY, "s1", 1_780_000_000.0,
        Severity.WARNING, resident_id=None, room_id="bedroom", device_id="bat-1",
        evidence=(ev,), details={"percent": 12},
    )  # fmt: skip
    back = transition_from(transition_bytes(t))
    assert back == t
    assert transition_id(back) == transition_id(t)


def test_the_id_names_the_change_itself() -> None:
    t = Transition(TransitionAction.RAISE, AlertKind.SOS, "s1", 10.0, Severity.CRITICAL, "r1")
    assert transition_id(t) != transition_id(dataclasses.replace(t, ts=11.0))
    assert transition_id(t) != transition_id(dataclasses.replace(t, action=TransitionAction.CLEAR))
    assert transition_id(t) != transition_id(dataclasses.replace(t, resident_id="r2"))


@pytest.mark.parametrize("data", [b"", b"not json", b"{}", b'{"site": 1}', b"[1, 2]"])
def test_what_is_not_a_reading_or_transition_is_a_clear_error(data: bytes) -> None:
    with pytest.raises(WireError):
        reading_from(data)
    with pytest.raises(WireError):
        transition_from(data)


def test_decoded_readings_share_their_id_strings() -> None:
    """A worker keeps the ids of a site's recent readings: one string per id, not per reading."""
    r = Reading("s1", "s1-pir", Stream.MOTION, 10.0, {"motion": True}, room_id="hall")
    a = reading_from(reading_bytes(r))
    b = reading_from(reading_bytes(dataclasses.replace(r, ts=11.0)))
    assert a.site_id is b.site_id
    assert a.device_id is b.device_id
    assert a.room_id is b.room_id


def test_a_reading_whose_id_is_not_a_string_is_a_clear_error() -> None:
    data = reading_bytes(Reading("s1", "d1", Stream.MOTION, 10.0, {}))
    with pytest.raises(WireError):
        reading_from(data.replace(b'"device":"d1"', b'"device":7'))
