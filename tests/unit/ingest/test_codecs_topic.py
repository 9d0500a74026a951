"""Topic value objects and wildcard matching (MQTT 3.1.1 §4.7)."""

from __future__ import annotations

import pytest

from eldercare.domain import Stream
from eldercare.wire import NativeTopic, TopicError, ingest_subscriptions, native_topic
from ingest.topic import Topic, TopicFilter


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("a/b/c", "a/b/c", True),
        ("a/b/c", "a/b", False),
        ("a/+/c", "a/x/c", True),
        ("a/+/c", "a/x/y/c", False),
        ("a/+", "a/", True),  # an empty level is a level
        ("+/+", "/x", True),
        ("a/#", "a", True),  # '#' also matches the parent
        ("a/#", "a/b/c/d", True),
        ("a/#", "ab/c", False),
        ("#", "anything/at/all", True),
        ("#", "$SYS/broker/load", False),
        ("+/broker/load", "$SYS/broker/load", False),
        ("$SYS/#", "$SYS/broker/load", True),
        ("eldercare/+/+/+", "eldercare/hh-1/pir-1/motion", True),
        ("eldercare/+/+/+", "eldercare/hh-1/pir-1/motion/x", False),
        ("zigbee2mqtt/#", "zigbee2mqtt/kitchen/floor_light", True),
    ],
)
def test_filter_matching(pattern: str, topic: str, expected: bool) -> None:
    assert TopicFilter(pattern).matches(topic) is expected
    assert Topic(topic).matches(pattern) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a+/b", "a/\x00"])
def test_invalid_filters(bad: str) -> None:
    with pytest.raises(TopicError):
        TopicFilter(bad)


@pytest.mark.parametrize("bad", ["", "a/+", "a/#", "a\x00b", "x" * 70000])
def test_invalid_topics(bad: str) -> None:
    with pytest.raises(TopicError):
        Topic(bad)


def test_native_topic_round_trip() -> None:
    parsed = NativeTopic.parse("eldercare/hh-3-2-401/bed-1/occupancy")
    assert parsed == NativeTopic("hh-3-2-401", "bed-1", Stream.OCCUPANCY)
    assert str(parsed) == "eldercare/hh-3-2-401/bed-1/occupancy"
    assert native_topic("hh-3-2-401", "bed-1", Stream.AVAILABILITY) == (
        "eldercare/hh-3-2-401/bed-1/availability"
    )
    with pytest.raises(TopicError):
        native_topic("hh 1", "bed-1", "motion")
    with pytest.raises(TopicError):
        native_topic("hh-1", "bed-1", "smell")


def test_subscriptions_cover_every_decoded_topic() -> None:
    filters = [TopicFilter(f) for f in ingest_subscriptions(["zigbee2mqtt", "site7/z2m"])]
    for topic in [
        "eldercare/hh-1/pir-1/motion",
        "eldercare/hh-1/pir-1/availability",
        "zigbee2mqtt/401/bed",
        "zigbee2mqtt/401/bed/availability",
        "site7/z2m/bed",
        "shellies/shellydw-B88D99/sensor/state",
        "shellies/shellymotionsensor-60A423BEB736/status",
        "tele/sonoff2/SENSOR",
        "tele/sonoff2/LWT",
        "tele/sonoff2/STATE",
        "stat/sonoff2/RESULT",
    ]:
        assert any(f.matches(topic) for f in filters), topic
