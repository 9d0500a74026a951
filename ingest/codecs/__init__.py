"""Codecs: MQTT topic + payload bytes → `Decoded` readings, `Ignored`, or `Rejected`.

`decode` is pure (no I/O, no clock, no registry) and never raises, whatever the
bytes and whatever the topic: a bad message becomes a `Rejected` with a cause that
ingest counts and quarantines. After the registry has resolved which device sent a
vendor message, `adapt_to_device` gives ambiguous vendor readings (a relay input,
z2m `occupancy`) the meaning the device's kind implies.
"""

from __future__ import annotations

from eldercare.wire import native_schema
from ingest.codecs.adapt import adapt_to_device
from ingest.codecs.common import Invalid
from ingest.codecs.limits import DEFAULT_LIMITS, DecodeLimits
from ingest.codecs.native import NATIVE_ROOT_PREFIX, decode_native
from ingest.codecs.shelly import SHELLY_ROOT_PREFIX, decode_shelly
from ingest.codecs.tasmota import TASMOTA_PREFIXES, decode_tasmota
from ingest.codecs.z2m import decode_z2m
from ingest.decoded import DecodeResult, RejectCause, Rejected
from ingest.topic import topic_problem

__all__ = ["DecodeLimits", "adapt_to_device", "decode", "native_schema"]


def decode(
    topic: str, payload: bytes, received_at: float, *, limits: DecodeLimits | None = None
) -> DecodeResult:
    """Decode one MQTT message. Never raises."""
    try:
        return _decode(topic, payload, received_at, limits or DEFAULT_LIMITS)
    except Invalid as exc:
        return Rejected(exc.cause, exc.detail)
    except Exception as exc:  # a codec bug must not stop ingest; the cause is still counted
        return Rejected(RejectCause.SCHEMA, f"undecodable ({type(exc).__name__})")


def _decode(topic: str, payload: bytes, received_at: float, limits: DecodeLimits) -> DecodeResult:
    if type(payload) is not bytes:
        payload = bytes(payload)  # bytearray / memoryview from some MQTT clients
    # Size first: a huge payload is refused before any work is spent on it.
    if len(payload) > limits.max_payload_bytes:
        return Rejected(
            RejectCause.OVERSIZE, f"{len(payload)} bytes, at most {limits.max_payload_bytes}"
        )
    if topic.startswith(NATIVE_ROOT_PREFIX):
        # The native topic parser checks every level; no generic topic scan needed.
        return decode_native(topic, payload, received_at, limits)
    problem = topic_problem(topic)
    if problem is not None:
        return Rejected(RejectCause.BAD_TOPIC, problem)
    for base in limits.z2m_base_topics:
        if topic.startswith(base) and topic[len(base) : len(base) + 1] == "/":
            return decode_z2m(base, topic[len(base) + 1 :], payload, received_at, limits)
    if topic.startswith(SHELLY_ROOT_PREFIX):
        return decode_shelly(topic, payload, received_at, limits)
    if topic.startswith(TASMOTA_PREFIXES):
        return decode_tasmota(topic, payload, received_at, limits)
    return Rejected(RejectCause.UNSUPPORTED, f"no codec for topic {repr(topic)[:80]}")
