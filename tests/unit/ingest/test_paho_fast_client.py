"""The paho fast path, pinned to the paho it patches.

`ingest.paho_fast_client.LeanClient` overrides and calls private methods of paho's
`Client`. The first test fails loudly, naming the method, when the installed paho's
source of any of them differs from the release the client was checked against: read
paho's new code, adapt the client, then update PINNED. The others run the client's
receive and acknowledge paths over a real socket pair (no broker needed: the bytes
are MQTT 3.1.1 packets as a broker sends them)."""

from __future__ import annotations

import hashlib
import inspect
import socket
import struct
from collections.abc import Iterator

import paho.mqtt
import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from ingest.paho_fast_client import PAHO_CHECKED, LeanClient

# sha256 (first 16 hex digits) of the source of each paho method the client overrides
# or relies on, in paho PAHO_CHECKED.
PINNED = {
    "_packet_read": "bbe32d8af1e37955",
    "_handle_publish": "1bbaa3ef0e3afc6d",
    "_packet_handle": "ac4c129ed409db42",
    "_packet_queue": "e298fa9ab31e5f79",
    "_sock_recv": "c3b9043a46dd81b7",
    "_easy_log": "02c7afc1854c3a9d",
    "_sock_close": "638e9c4e5a7f32ae",
}
# The private attributes it reads or writes, besides those methods.
ATTRIBUTES = ("_in_packet", "_msgtime_mutex", "_last_bytes_received", "_protocol", "_sock")
IN_PACKET_KEYS = {
    "command",
    "have_remaining",
    "remaining_count",
    "remaining_mult",
    "remaining_length",
    "packet",
    "to_process",
    "pos",
}


def _fingerprint(name: str) -> str:
    return hashlib.sha256(inspect.getsource(getattr(Client, name)).encode()).hexdigest()[:16]


def test_paho_private_methods_are_those_the_fast_client_was_written_for() -> None:
    changed = [name for name, pin in PINNED.items() if _fingerprint(name) != pin]
    assert not changed, (
        f"paho {paho.mqtt.__version__} changed {changed} since {PAHO_CHECKED}, whose private "
        "methods ingest/paho_fast_client.py overrides: re-read them, adapt the client, "
        "then update PINNED and PAHO_CHECKED"
    )
    client = Client(CallbackAPIVersion.VERSION2)
    missing = [a for a in ATTRIBUTES if not hasattr(client, a)]
    assert not missing, f"paho {paho.mqtt.__version__} no longer has {missing}"
    assert set(client._in_packet) == IN_PACKET_KEYS


@pytest.fixture
def wired() -> Iterator[tuple[LeanClient, socket.socket]]:
    """A client whose socket is one end of a pair; the test is the broker at the other."""
    client = LeanClient(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311)
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    yield client, broker
    ours.close()
    broker.close()


def _publish(topic: bytes, payload: bytes, qos: int, mid: int, retain: bool = False) -> bytes:
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    body += payload
    assert len(body) < 128  # one byte of remaining length is enough here
    return bytes([0x30 | qos << 1 | int(retain), len(body)]) + body


def test_publishes_cut_from_one_read_reach_the_raw_handler(
    wired: tuple[LeanClient, socket.socket],
) -> None:
    client, broker = wired
    got: list[tuple[bytes, bytes, int, int, bool]] = []
    client.raw_handler = lambda *m: got.append(m)
    broker.sendall(
        _publish(b"eldercare/v1/s1/d1/motion", b'{"motion":true}', 1, 7)
        + _publish(b"t/2", b"x", 0, 0, retain=True)
        + _publish(b"t/3", b"partial", 1, 9)[:5]  # the rest comes later
    )
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got == [
        (b"eldercare/v1/s1/d1/motion", b'{"motion":true}', 1, 7, False),
        (b"t/2", b"x", 0, 0, True),
    ]
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_AGAIN and client.would_block
    assert client.buffered() == 5
    broker.sendall(_publish(b"t/3", b"partial", 1, 9)[5:])
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got[-1] == (b"t/3", b"partial", 1, 9, False)


def test_a_malformed_publish_is_a_protocol_error_not_a_crash(
    wired: tuple[LeanClient, socket.socket],
) -> None:
    client, broker = wired
    client.raw_handler = lambda *m: pytest.fail("a malformed packet was handed on")
    broker.sendall(bytes([0x32, 3]) + b"\x00\x09a")  # topic longer than the packet
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_PROTOCOL


def test_ack_many_writes_every_puback_in_order_in_one_write(
    wired: tuple[LeanClient, socket.socket],
) -> None:
    client, broker = wired
    assert client.ack_many([1, 2, 300]) == MQTTErrorCode.MQTT_ERR_SUCCESS
    broker.settimeout(5)
    assert broker.recv(64) == b"\x40\x02\x00\x01\x40\x02\x00\x02\x40\x02\x01\x2c"
