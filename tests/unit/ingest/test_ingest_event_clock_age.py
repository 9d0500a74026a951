"""Replaying a recording on the event clock: old event times are not `ancient_timestamp`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from eldercare.registry_index import RegistryIndex
from eldercare.settings import Settings
from ingest.codecs import decode
from ingest.decoded import Decoded, RejectCause, Rejected
from ingest.service import IngestService


class _Sink:
    async def handle_readings(self, readings: object) -> None:
        return None


def _service(tmp_path: Path, clock_mode: str) -> IngestService:
    settings = Settings(run_dir=tmp_path, clock_mode=clock_mode)
    return IngestService(settings, RegistryIndex.empty, _Sink())


def _year_old_motion() -> tuple[str, bytes, float]:
    now = time.time()
    payload = json.dumps({"ts": now - 365 * 86400, "motion": True}).encode()
    return "eldercare/site-1/pir-1/motion", payload, now


def test_event_clock_accepts_a_year_old_event_time(tmp_path: Path) -> None:
    topic, payload, now = _year_old_motion()
    result = decode(topic, payload, now, limits=_service(tmp_path, "event").limits)
    assert type(result) is Decoded


def test_wall_clock_still_quarantines_it(tmp_path: Path) -> None:
    topic, payload, now = _year_old_motion()
    result = decode(topic, payload, now, limits=_service(tmp_path, "wall").limits)
    assert isinstance(result, Rejected) and result.cause is RejectCause.ANCIENT_TIMESTAMP
