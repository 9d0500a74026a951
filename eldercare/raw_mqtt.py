"""Raw MQTT 3.1.1 packets for load generators and the simulator: pre-built PUBLISH
bytes cost the publisher almost no CPU, so a benchmark measures the platform, not
paho's client, and a simulated city fits in one process."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"
# Fixed-header types of the packets a publishing client receives.
CONNACK, PUBACK, PINGRESP = 0x20, 0x40, 0xD0


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8_field(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">H", len(raw)) + raw


def publish_packet(
    topic: bytes, packet_id: int, payload: bytes, qos: int = 1, retain: bool = False
) -> bytes:
    body = struct.pack(">H", len(topic)) + topic
    if qos:
        body += struct.pack(">H", packet_id)
    body += payload
    header = (0x32 if qos else 0x30) | (0x01 if retain else 0)
    return bytes([header]) + remaining_length(len(body)) + body


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def connect_packet(
    client_id: str,
    username: str | None = None,
    password: str = "",
    will: Will | None = None,
    keepalive: int = 60,
) -> bytes:
    """CONNECT with a clean session, optionally a user name and password and a Last Will."""
    flags = 0x02
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if username:
        flags |= 0xC0
    variable = b"\x00\x04MQTT\x04" + bytes([flags]) + struct.pack(">H", keepalive)
    variable += utf8_field(client_id)
    if will is not None:
        variable += utf8_field(will.topic) + struct.pack(">H", len(will.payload)) + will.payload
    if username:
        variable += utf8_field(username) + utf8_field(password)
    return b"\x10" + remaining_length(len(variable)) + variable


def read_remaining_length(buf: bytes | bytearray, start: int) -> tuple[int, int] | None:
    """Decode MQTT's variable-length "remaining length" at `buf[start:]`: (length, index
    of the body), or None while its bytes have not all arrived. ValueError past the
    4 bytes the protocol allows."""
    length, multiplier, i, n = 0, 1, start, len(buf)
    while i < n:
        byte = buf[i]
        length += (byte & 0x7F) * multiplier
        multiplier *= 128
        i += 1
        if not byte & 0x80:
            return length, i
        if i - start >= 4:
            raise ValueError("MQTT remaining length longer than 4 bytes")
    return None


def split_packets(buf: bytearray) -> list[tuple[int, bytes]]:
    """Take the complete packets off the front of `buf`: (type byte, body) each."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    n = len(buf)
    while pos + 2 <= n:
        head = read_remaining_length(buf, pos + 1)
        if head is None or head[1] + head[0] > n:
            break
        length, i = head
        out.append((buf[pos], bytes(buf[i : i + length])))
        pos = i + length
    del buf[:pos]
    return out


def connect(
    host: str, port: int, client_id: str, username: str | None = None, password: str = ""
) -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(client_id, username, password))
    connack = sock.recv(4)
    if len(connack) < 4 or connack[0] != 0x20 or connack[3] != 0:
        raise ConnectionError(f"broker refused {client_id}: {connack!r}")
    return sock
