"""The device wire contract: where native devices publish, and what ingest listens to.

Native devices (ours, and the simulator's) publish JSON to
`eldercare/<site_id>/<device_id>/<stream>`, with `availability` as one of the streams.
The site id is the second level on purpose: it is the partition key when sites are
spread across ingest workers (a shared subscription per site range). Ingest parses
these topics and the simulator writes them, both from this one definition; the
payloads' JSON Schemas (draft 2020-12, one per stream) are in `eldercare/wire_schemas/`,
read with `native_schema`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from typing import Any, NamedTuple

from eldercare.domain import Stream
from eldercare.errors import EldercareError
from eldercare.registry_model import is_identifier

NATIVE_ROOT = "eldercare"
Z2M_DEFAULT_BASE_TOPIC = "zigbee2mqtt"
_STREAMS: dict[str, Stream] = {s.value: s for s in Stream}


class TopicError(EldercareError, ValueError):
    """A string that is not a valid topic (or not the topic kind expected)."""


def _is_id(value: str) -> bool:
    # is_identifier's regex ends in `$`, which also matches before a trailing newline.
    return is_identifier(value) and not value.endswith("\n")


class NativeTopic(NamedTuple):
    """`eldercare/<site_id>/<device_id>/<stream>`; `availability` is one of the streams."""

    site_id: str
    device_id: str
    stream: Stream

    @classmethod
    def parse(cls, topic: str) -> NativeTopic:
        levels = topic.split("/")
        if len(levels) != 4 or levels[0] != NATIVE_ROOT:
            raise TopicError(f"not {NATIVE_ROOT}/<site_id>/<device_id>/<stream>")
        _, site_id, device_id, stream_name = levels
        if not _is_id(site_id):
            raise TopicError(f"bad site id {site_id[:70]!r}")
        if not _is_id(device_id):
            raise TopicError(f"bad device id {device_id[:70]!r}")
        stream = _STREAMS.get(stream_name)
        if stream is None:
            raise TopicError(f"unknown stream {stream_name[:40]!r}")
        return cls(site_id, device_id, stream)

    def __str__(self) -> str:
        return format_native_topic(self.site_id, self.device_id, self.stream)


def format_native_topic(site_id: str, device_id: str, stream: Stream | str) -> str:
    """The topic of a native device's `stream`, for ids already known to be valid (the
    simulator's hot path); `native_topic` checks them."""
    return f"{NATIVE_ROOT}/{site_id}/{device_id}/{stream}"


def native_topic(site_id: str, device_id: str, stream: Stream | str) -> str:
    """The topic a native device publishes `stream` on; validates the ids."""
    text = format_native_topic(site_id, device_id, stream)
    NativeTopic.parse(text)
    return text


def ingest_subscriptions(z2m_base_topics: Iterable[str] = (Z2M_DEFAULT_BASE_TOPIC,)) -> list[str]:
    """The filters the ingest session subscribes to: every topic tree a codec reads, whole,
    so that a malformed topic inside one still arrives and is quarantined, not unseen."""
    return [
        f"{NATIVE_ROOT}/#",
        *(f"{base}/#" for base in z2m_base_topics),
        "shellies/#",
        "tele/#",
        "stat/#",
    ]


def native_schema(stream: Stream | str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one native stream's payload."""
    name = stream.value if isinstance(stream, Stream) else stream
    text = resources.files("eldercare").joinpath("wire_schemas", f"{name}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
