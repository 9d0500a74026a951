"""Raw MQTT 3.1.1 packets for load generators: pre-built PUBLISH bytes cost the
publisher almost no CPU, so a benchmark measures the platform, not paho's client."""

from __future__ import annotations

import socket
import struct


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


def publish_packet(topic: bytes, packet_id: int, payload: bytes, qos: int = 1) -> bytes:
    body = struct.pack(">H", len(topic)) + topic
    if qos:
        body += struct.pack(">H", packet_id)
    body += payload
    header = 0x32 if qos else 0x30
    return bytes([header]) + remaining_length(len(body)) + body


def connect(
    host: str, port: int, client_id: str, username: str | None = None, password: str = ""
) -> socket.socket:
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    flags = 0x02 | (0xC0 if username else 0)  # clean session, user name and password
    variable = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x3c" + utf8_field(client_id)
    if username:
        variable += utf8_field(username) + utf8_field(password)
    sock.sendall(b"\x10" + remaining_length(len(variable)) + variable)
    connack = sock.recv(4)
    if len(connack) < 4 or connack[0] != 0x20 or connack[3] != 0:
        raise ConnectionError(f"broker refused {client_id}: {connack!r}")
    return sock
