"""MQTT topics as value objects: a concrete `Topic`, a subscription `TopicFilter`
with wildcard matching, and the platform's own `NativeTopic`
(`eldercare/<site_id>/<device_id>/<stream>`).

The site id is the second level on purpose: it is the partition key when sites are
spread across ingest workers (a shared subscription per site range).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from eldercare.domain import Stream
from eldercare.registry_model import is_identifier

NATIVE_ROOT = "eldercare"
_MAX_TOPIC_BYTES = 65535  # MQTT encodes a topic's length in two bytes
_STREAMS: dict[str, Stream] = {s.value: s for s in Stream}


class TopicError(ValueError):
    """A string that is not a valid topic (or not the topic kind expected)."""


def _is_id(value: str) -> bool:
    # is_identifier's regex ends in `$`, which also matches before a trailing newline.
    return is_identifier(value) and not value.endswith("\n")


def _utf8_length(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _check_common(value: str, what: str) -> None:
    if not value:
        raise TopicError(f"{what} is empty")
    if "\x00" in value:
        raise TopicError(f"{what} contains NUL")
    # A UTF-8 character is at most 4 bytes: only long strings need encoding to measure.
    if len(value) * 4 > _MAX_TOPIC_BYTES and _utf8_length(value) > _MAX_TOPIC_BYTES:
        raise TopicError(f"{what} longer than {_MAX_TOPIC_BYTES} bytes")


def topic_problem(value: str) -> str | None:
    """Why `value` cannot be a topic a message was published to, or None if it can."""
    try:
        _check_common(value, "topic")
    except TopicError as exc:
        return str(exc)
    if "+" in value or "#" in value:
        return "topic contains a wildcard"
    return None


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic a message is published to: no wildcards."""

    value: str

    def __post_init__(self) -> None:
        problem = topic_problem(self.value)
        if problem is not None:
            raise TopicError(problem)

    @property
    def levels(self) -> list[str]:
        return self.value.split("/")

    def matches(self, topic_filter: TopicFilter | str) -> bool:
        if isinstance(topic_filter, str):
            topic_filter = TopicFilter(topic_filter)
        return topic_filter.matches(self)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class TopicFilter:
    """A subscription: `+` matches one level, a final `#` matches any rest (MQTT 3.1.1 §4.7)."""

    value: str

    def __post_init__(self) -> None:
        _check_common(self.value, "topic filter")
        levels = self.value.split("/")
        for i, level in enumerate(levels):
            if "#" in level and (level != "#" or i != len(levels) - 1):
                raise TopicError(f"'#' must be a whole last level in {self.value!r}")
            if "+" in level and level != "+":
                raise TopicError(f"'+' must be a whole level in {self.value!r}")

    @property
    def levels(self) -> list[str]:
        return self.value.split("/")

    def matches(self, topic: Topic | str) -> bool:
        name = topic.value if isinstance(topic, Topic) else Topic(topic).value
        topic_levels = name.split("/")
        filter_levels = self.value.split("/")
        # Wildcards at the first level never match $SYS-style broker topics.
        if name.startswith("$") and filter_levels[0] in ("+", "#"):
            return False
        for i, want in enumerate(filter_levels):
            if want == "#":
                return True  # also matches the parent level itself: "a/#" matches "a"
            if i >= len(topic_levels):
                return False
            if want != "+" and want != topic_levels[i]:
                return False
        return len(topic_levels) == len(filter_levels)

    def __str__(self) -> str:
        return self.value


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
        return f"{NATIVE_ROOT}/{self.site_id}/{self.device_id}/{self.stream.value}"


def native_topic(site_id: str, device_id: str, stream: Stream | str) -> str:
    """The topic a native device publishes `stream` on; validates the ids."""
    name = stream.value if isinstance(stream, Stream) else stream
    text = f"{NATIVE_ROOT}/{site_id}/{device_id}/{name}"
    NativeTopic.parse(text)
    return text


def subscription_filters(z2m_base_topics: Iterable[str] = ("zigbee2mqtt",)) -> list[str]:
    """Everything the codecs understand, as the filters ingest subscribes to."""
    filters = [f"{NATIVE_ROOT}/+/+/+"]
    filters += [f"{base}/#" for base in z2m_base_topics]
    filters += ["shellies/#", "tele/+/SENSOR", "tele/+/STATE", "tele/+/LWT", "stat/+/RESULT"]
    for f in filters:
        TopicFilter(f)
    return filters
