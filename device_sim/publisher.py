"""MQTT publishing for many simulated sites from one thread: one connection per site.

A real home has one gateway talking to the broker, so each simulated site gets one
connection whose Last Will is its gateway's `offline`, logged in with the site's
own account when the broker has one for it (`BrokerConfig.site_passwords`), else
with the configured account. The connections speak MQTT 3.1.1 over plain sockets
(`eldercare.raw_mqtt`): a PUBLISH is a few bytes appended to the site's buffer,
buffers go out in large writes, and QoS 1 acknowledgements are counted as they
come back, many in flight per connection. A broker acknowledges one connection's
QoS 1 messages in order, so a PUBACK needs no lookup: it settles the oldest
outstanding publish of its connection. paho cost several times more CPU per
message, most of it in per-packet bookkeeping the simulator does not need.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from device_sim.encoding import Message
from eldercare import raw_mqtt
from eldercare.errors import EldercareError
from eldercare.logs import get_logger

log = get_logger(__name__)

_CONNACK_CODES = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}
_SEND_CHUNK = 1 << 18
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class PublishError(EldercareError, RuntimeError):
    """The broker refused or dropped a site's connection."""


@dataclass(slots=True)
class BrokerConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    keepalive: int = 120  # generous: a broker on a busy machine may read late
    # Client ids are `<prefix>-<site>`; the process id keeps two simulators on one
    # broker from taking over each other's connections.
    client_prefix: str = field(default_factory=lambda: f"sim{os.getpid()}")
    # Site id → that site's own password (user name = site id), as a real gateway logs in.
    site_passwords: Mapping[str, str] = field(default_factory=dict)

    def login(self, site_id: str) -> tuple[str | None, str]:
        password = self.site_passwords.get(site_id)
        if password is not None:
            return site_id, password
        return self.username, self.password or ""


@dataclass(slots=True)
class _Site:
    sock: socket.socket
    out: bytearray = field(default_factory=bytearray)
    inbox: bytearray = field(default_factory=bytearray)
    # Publish sequence numbers not yet acknowledged, oldest first.
    unacked: deque[int] = field(default_factory=deque)
    packet_id: int = 0
    last_write: float = 0.0
    connected: bool = False
    refused: str | None = None

    def next_packet_id(self) -> int:
        self.packet_id = self.packet_id % 65535 + 1
        return self.packet_id


@dataclass(slots=True)
class MqttPublisher:
    broker: BrokerConfig
    qos: int = 1
    published: int = 0
    _sites: dict[str, _Site] = field(default_factory=dict)
    _selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    _ssl: ssl.SSLContext | None = None
    _last_ping_check: float = 0.0

    def connect(self, site_id: str, will: Message, timeout: float = 10.0) -> None:
        old = self._sites.pop(site_id, None)
        if old is not None:
            self._drop(old)
        try:
            sock = socket.create_connection((self.broker.host, self.broker.port), timeout=timeout)
        except OSError as exc:
            raise PublishError(
                f"cannot reach the broker at {self.broker.host}:{self.broker.port}: {exc}"
            ) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if _QUICKACK is not None:
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        if self.broker.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context(cafile=self.broker.ca_file)
            sock = self._ssl.wrap_socket(sock, server_hostname=self.broker.host)
        sock.setblocking(False)
        user, password = self.broker.login(site_id)
        state = _Site(sock)
        state.out += raw_mqtt.connect_packet(
            f"{self.broker.client_prefix}-{site_id}",
            user,
            password,
            raw_mqtt.Will(will.topic, will.payload, qos=1, retain=will.retain),
            keepalive=self.broker.keepalive,
        )
        self._sites[site_id] = state
        self._selector.register(sock, selectors.EVENT_READ, site_id)
        deadline = time.monotonic() + timeout
        while not state.connected:
            if state.refused is not None:
                self._sites.pop(site_id, None)
                self._drop(state)
                raise PublishError(f"broker refused site {site_id} (user {user}): {state.refused}")
            if time.monotonic() > deadline:
                raise PublishError(f"no CONNACK from the broker for site {site_id}")
            self.pump(0.05)

    def publish(self, site_id: str, message: Message) -> int:
        """Queue one message; returns its publish sequence number (see `acked_through`)."""
        state = self._sites.get(site_id)
        if state is None:
            return self.published  # the site is cut off (simulated power cut): nothing leaves
        self.published += 1
        if self.qos:
            state.unacked.append(self.published)
            packet_id = state.next_packet_id()
        else:
            packet_id = 0
        state.out += raw_mqtt.publish_packet(
            message.topic.encode(), packet_id, message.payload, self.qos, message.retain
        )
        return self.published

    def acked_through(self, seq: int) -> bool:
        """Has the broker acknowledged every message up to publish number `seq`? (QoS 0:
        nothing is acknowledged; ordering across sites is best effort.)"""
        if not self.qos:
            return True
        return all(not s.unacked or s.unacked[0] > seq for s in self._sites.values())

    def wait_acked(self, seq: int) -> None:
        """Read acknowledgements until `acked_through(seq)`. Sends nothing new: messages up
        to `seq` must have gone out already (`send_all`)."""
        while not self.acked_through(seq):
            self.pump(0.005, send=False)

    def send_all(self) -> None:
        """Write everything queued to the sockets, however long a full socket takes."""
        self.pump(0.0)
        while self.buffered():
            self.pump(0.001)

    def cut(self, site_id: str) -> None:
        """Drop the site's connection without DISCONNECT: the broker publishes its Will."""
        state = self._sites.pop(site_id, None)
        if state is not None:
            self._drop(state)  # what is still buffered is lost, as in a power cut

    def pump(self, timeout: float = 0.0, send: bool = True) -> None:
        """Write what is queued (unless `send` is False), read acknowledgements, keep idle
        connections alive."""
        if send:
            for state in self._sites.values():
                if state.out:
                    self._write(state)
        if not self._sites:
            if timeout > 0:
                time.sleep(timeout)
            return
        for key, _ in self._selector.select(timeout):
            readable = self._sites.get(key.data)
            if readable is not None:
                self._read(key.data, readable)
        now = time.monotonic()
        if now - self._last_ping_check > 1.0:
            self._last_ping_check = now
            for state in self._sites.values():
                if now - state.last_write > self.broker.keepalive / 2:
                    state.out += raw_mqtt.PINGREQ
                    self._write(state)

    def buffered(self) -> int:
        """Bytes queued but not yet written to the sockets."""
        return sum(len(s.out) for s in self._sites.values())

    def pending(self) -> int:
        """Messages not yet acknowledged by the broker (QoS 1), or sites with bytes not yet
        written (QoS 0)."""
        if self.qos:
            return sum(len(s.unacked) for s in self._sites.values())
        return sum(1 for s in self._sites.values() if s.out)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything is written and (QoS 1) acknowledged, or the timeout."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                return False
            self.pump(0.02)
        return True

    def close(self) -> None:
        self.flush(10.0)
        for state in self._sites.values():
            state.out += raw_mqtt.DISCONNECT  # a clean goodbye: no Last Will
            with contextlib.suppress(OSError):
                state.sock.settimeout(5.0)
                state.sock.sendall(state.out)
            self._drop(state)
        self._sites.clear()

    # -- sockets ---------------------------------------------------------------------

    def _write(self, state: _Site) -> None:
        while state.out:
            try:
                sent = state.sock.send(memoryview(state.out)[:_SEND_CHUNK])
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            except OSError as exc:
                raise PublishError(f"lost the broker connection: {exc}") from exc
            del state.out[:sent]
            state.last_write = time.monotonic()

    def _read(self, site_id: str, state: _Site) -> None:
        while True:
            try:
                data = state.sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            except OSError as exc:
                raise PublishError(f"lost the broker connection of {site_id}: {exc}") from exc
            if not data:
                if not state.connected and state.refused is None:
                    state.refused = "connection closed before CONNACK"
                    return
                raise PublishError(f"the broker closed the connection of site {site_id}")
            state.inbox += data
            if _QUICKACK is not None:
                # Acknowledge the broker's segments at once: Mosquitto leaves Nagle on by
                # default, so its next PUBACK would wait for our delayed ACK (~40 ms).
                with contextlib.suppress(OSError):
                    state.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            if len(data) < 65536:
                break
        for kind, body in raw_mqtt.split_packets(state.inbox):
            kind &= 0xF0
            if kind == raw_mqtt.PUBACK:
                if state.unacked:
                    state.unacked.popleft()
            elif kind == raw_mqtt.CONNACK:
                code = body[1] if len(body) > 1 else 255
                if code == 0:
                    state.connected = True
                else:
                    state.refused = _CONNACK_CODES.get(code, f"code {code}")

    def _drop(self, state: _Site) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(state.sock)
        state.sock.close()
