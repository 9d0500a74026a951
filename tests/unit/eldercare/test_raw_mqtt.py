"""MQTT 3.1.1 framing shared by the load generators, the simulator and ingest's reader."""

from __future__ import annotations

import pytest

from eldercare.raw_mqtt import read_remaining_length, remaining_length, split_packets

BOUNDARIES = [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455]


@pytest.mark.parametrize("length", BOUNDARIES)
def test_remaining_length_round_trips_at_every_byte_boundary(length: int) -> None:
    encoded = remaining_length(length)
    buf = b"\x30" + encoded + b"rest"
    assert read_remaining_length(buf, 1) == (length, 1 + len(encoded))
    # Any prefix that stops inside the length bytes is "not yet", not a wrong length.
    for cut in range(1, 1 + len(encoded)):
        assert read_remaining_length(buf[:cut], 1) is None


def test_more_than_four_length_bytes_is_a_protocol_error() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        read_remaining_length(b"\x30\xff\xff\xff\xff\x01", 1)


def test_split_packets_keeps_an_incomplete_packet_for_later() -> None:
    first = b"\x40\x02\x00\x01"  # PUBACK of id 1
    second = b"\x30" + remaining_length(200) + b"x" * 200
    buf = bytearray(first + second[:50])
    assert split_packets(buf) == [(0x40, b"\x00\x01")]
    assert bytes(buf) == second[:50]
    buf += second[50:]
    assert split_packets(buf) == [(0x30, b"x" * 200)]
    assert buf == bytearray()
