"""An ingest worker of a cluster keeps the emergency lane: both of its MQTT sessions are
shared subscriptions (each message to one worker per lane), in groups of their own."""

from __future__ import annotations

from pathlib import Path

from eldercare.registry_index import RegistryIndex
from eldercare.settings import Settings
from eldercare_app.cluster_roles import SHARED_GROUP, shared_topics
from ingest.service import EMERGENCY_TOPICS, IngestService


class _Sink:
    async def handle_readings(self, readings: object) -> None:
        return None


def test_a_cluster_ingest_worker_has_a_shared_emergency_lane(tmp_path: Path) -> None:
    plain = Settings(run_dir=tmp_path)
    shared = plain.model_copy(update={"mqtt_topics": shared_topics(plain.mqtt_topics)})
    one = IngestService(plain, RegistryIndex.empty, _Sink())
    worker = IngestService(shared, RegistryIndex.empty, _Sink())
    assert one.emergency_config is not None
    assert worker.emergency_config is not None, "the ingest role lost its emergency lane"
    assert tuple(one.emergency_config.topics) == EMERGENCY_TOPICS
    assert tuple(worker.emergency_config.topics) == tuple(
        f"$share/{SHARED_GROUP}-emergency/{t}" for t in EMERGENCY_TOPICS
    )
