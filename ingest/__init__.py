"""Ingest: MQTT readings in, decoded, written to InfluxDB and handed to the detectors
(see docs/architecture.md). The names below are its public API; the rest is internal."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.codecs import decode
    from ingest.decoded import Decoded
    from ingest.mqtt_session import InboundMessage, MqttConfig, MqttConnection, MqttError
    from ingest.service import IngestService
    from ingest.site_status import FanOutSink, SiteStatusTracker

__all__ = [
    "Decoded",
    "FanOutSink",
    "InboundMessage",
    "IngestService",
    "MqttConfig",
    "MqttConnection",
    "MqttError",
    "SiteStatusTracker",
    "decode",
]

# Loaded on first use: importing one module of the package does not import them all.
_EXPORTED_FROM = {
    "IngestService": "ingest.service",
    "decode": "ingest.codecs",
    "Decoded": "ingest.decoded",
    "FanOutSink": "ingest.site_status",
    "SiteStatusTracker": "ingest.site_status",
    "InboundMessage": "ingest.mqtt_session",
    "MqttConfig": "ingest.mqtt_session",
    "MqttConnection": "ingest.mqtt_session",
    "MqttError": "ingest.mqtt_session",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTED_FROM.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
