"""MQTT topics as value objects: a concrete `Topic` and a subscription `TopicFilter`
with wildcard matching. The platform's own native topics and the subscriptions of
the ingest session are the device wire contract, in `eldercare.wire`."""

from __future__ import annotations

from dataclasses import dataclass

from eldercare.wire import TopicError

_MAX_TOPIC_BYTES = 65535  # MQTT encodes a topic's length in two bytes


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
