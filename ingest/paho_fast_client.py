"""paho's client with a faster receive path for the ingest's subscriber.

It overrides private methods of `paho.mqtt.client.Client` (`_packet_read`,
`_handle_publish`) and relies on others (`_packet_handle`, `_packet_queue`,
`_sock_recv`, `_easy_log`, the `_in_packet` dict, `_msgtime_mutex`,
`_last_bytes_received`, `_protocol`). paho may change any of them in a release:
tests/unit/ingest/test_paho_fast_client.py pins the source of each to the paho
version below and fails, naming the method, when paho differs. Re-read paho's
new code, adapt this module, then update the pins.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket

from eldercare.raw_mqtt import read_remaining_length

# The paho release whose private methods this client was checked against.
PAHO_CHECKED = "2.2.0"

_READ_CHUNK = 256 * 1024

RawPublishHandler = Callable[[bytes, bytes, int, int, bool], None]
_PUBACK = 0x40


class LeanClient(paho.Client):
    """paho with a leaner receive path for a subscriber that acknowledges by hand.

    - paho reads each packet's fixed header a byte at a time (three `recv` calls a
      message); here the socket is read in large chunks and whole packets are cut
      from the buffer. `would_block` tells the reader callback when to stop.
    - MQTT 3.1.1 QoS 0/1 PUBLISH packets go straight to `raw_handler` as bytes,
      without paho's message objects, locks and topic matcher (MQTT 5 and QoS 2
      take paho's own path).
    - `ack_many` sends a batch's PUBACKs as one write instead of one per message.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()
        self.would_block = False
        self.raw_handler: RawPublishHandler | None = None

    def reset_buffer(self) -> None:
        self._rbuf = bytearray()

    def buffered(self) -> int:
        return len(self._rbuf)

    def _packet_read(self) -> MQTTErrorCode:
        buf = self._rbuf
        while True:
            n = len(buf)
            if n >= 2:
                try:
                    head = read_remaining_length(buf, 1)
                except ValueError:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL
                if head is not None and n >= head[1] + head[0]:
                    length, i = head
                    break
            try:
                data = self._sock_recv(_READ_CHUNK)
            except BlockingIOError:
                self.would_block = True
                return MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError as err:
                self._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            if not data:
                return MQTTErrorCode.MQTT_ERR_CONN_LOST
            buf += data
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()
        command = buf[0]
        packet = buf[i : i + length]  # a copy, as paho's own bytearray
        del buf[: i + length]
        self._in_packet = {
            "command": command,
            "have_remaining": 1,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": length,
            "packet": packet,
            "to_process": 0,
            "pos": 0,
        }
        try:
            rc = self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(paho.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = {
            "command": 0,
            "have_remaining": 0,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": 0,
            "packet": bytearray(),
            "to_process": 0,
            "pos": 0,
        }
        return rc

    def _handle_publish(self) -> MQTTErrorCode:
        handler = self.raw_handler
        command = self._in_packet["command"]
        qos = (command & 0x06) >> 1
        if handler is None or qos == 2 or self._protocol == MQTTProtocolVersion.MQTTv5:
            return super()._handle_publish()
        packet = self._in_packet["packet"]
        if len(packet) < 2:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        (topic_len,) = _U16.unpack_from(packet, 0)
        pos = 2 + topic_len
        if topic_len == 0 or len(packet) < pos + (2 if qos else 0):
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        mid = 0
        if qos:
            (mid,) = _U16.unpack_from(packet, pos)
            pos += 2
        handler(bytes(packet[2 : 2 + topic_len]), bytes(packet[pos:]), qos, mid, bool(command & 1))
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: Sequence[int]) -> MQTTErrorCode:
        """PUBACK every id, in order, as one write (same bytes for MQTT 3.1.1 and 5)."""
        if not mids:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        pack = _PUBACK_PACKET.pack
        return self._packet_queue(_PUBACK, b"".join([pack(_PUBACK, 2, m) for m in mids]), 0, 0)


_U16 = struct.Struct("!H")
_PUBACK_PACKET = struct.Struct("!BBH")
