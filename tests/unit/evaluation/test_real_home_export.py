"""`eval export-home`: a real home as a registry and a recording that the platform's own
codecs read back as the same life (replaying it: tests/e2e/test_eval_replay.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

from eldercare.domain import DeviceKind
from eldercare.registry_model import RegistryDocument
from evaluation.real_homes.export import export_home
from evaluation.real_homes.kasteren import kasteren2010_house_b
from evaluation.replay import read_recording
from ingest.codecs import decode
from ingest.decoded import Decoded, NativeIdentity
from tests.unit.evaluation.test_real_homes_eval import _write_house_b


def test_the_recording_decodes_to_the_homes_life_and_the_registry_to_its_site(
    tmp_path: Path,
) -> None:
    home = kasteren2010_house_b(_write_house_b(tmp_path / "houseB_sensors.tsv", 2))
    done = export_home(home, tmp_path / "out")

    doc = RegistryDocument.model_validate(yaml.safe_load(done.registry.read_text("utf-8")))
    assert doc.sites == [home.site]
    # Where each contact is mounted travels with the home: the toilet and bedroom doors
    # are room doors; the sink float, cupboards and fridge are furniture (activity).
    contacts = {d.id: d.room_door for d in doc.sites[0].devices if d.kind is DeviceKind.DOOR}
    assert {d for d, on_door in contacts.items() if on_door} == {"toilet-door", "bedroom-door"}
    assert not contacts["sink-float"] and not contacts["fridge"]

    messages = read_recording(done.recording)
    assert len(messages) == done.messages == len(home.background)
    back = []
    for m in messages:
        assert m.ts is not None
        result = decode(m.topic, m.payload, received_at=m.ts)
        assert isinstance(result, Decoded), (m.topic, m.payload, result)
        assert isinstance(result.identity, NativeIdentity)
        (raw,) = result.readings
        back.append((result.identity.device_id, raw.stream, raw.ts, dict(raw.fields)))
    life = sorted(home.background, key=lambda r: (r.ts, r.device_id))
    assert back == [(r.device_id, r.stream, r.ts, dict(r.fields)) for r in life]
    kinds = {stream for _, stream, _, _ in back}
    assert len(kinds) >= 4  # contact, motion, occupancy, power/flush: every kind of the home
