"""Registry ids are interned strings: a detector worker's readings carry interned ids (the
cluster's wire decoding), so the ids its rule state keeps (state keys, evidence, deadlines)
are the registry's own strings, not one more copy per site."""

from __future__ import annotations

from cluster.wire import reading_bytes, reading_from
from eldercare.domain import Reading, Stream
from tests.helpers.detectors import home_site


def _fresh(text: str) -> str:
    return "".join(list(text))  # a new string object, not a compile-time constant


def test_site_room_device_and_resident_ids_are_interned() -> None:
    site = home_site(site_id=_fresh("home-77"))
    fresh = home_site(site_id=_fresh("home-77"))
    assert site.id is fresh.id
    for a, b in zip(site.devices, fresh.devices, strict=True):
        assert a.id is b.id and a.room is b.room
    for ra, rb in zip(site.rooms, fresh.rooms, strict=True):
        assert ra.id is rb.id
    for pa, pb in zip(site.residents, fresh.residents, strict=True):
        assert pa.id is pb.id


def test_a_decoded_reading_names_its_device_with_the_registry_string() -> None:
    site = home_site(site_id=_fresh("home-78"))
    device = site.devices[0]
    reading = Reading(
        site_id=_fresh(site.id),
        device_id=_fresh(device.id),
        stream=Stream.MOTION,
        ts=1.0,
        fields={"motion": True},
    )
    back = reading_from(reading_bytes(reading))
    assert back.site_id is site.id and back.device_id is device.id
