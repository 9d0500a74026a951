"""MQTT publishing for many simulated sites from one thread: one connection per site.

A real home has one gateway talking to the broker, so each simulated site gets one
paho client whose Last Will is its gateway's `offline`. Hundreds of clients run
without a network thread each: publishes go straight to the socket, and `pump()`
services all sockets with one `select` (PUBACKs, keep-alive pings).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import ssl
import time
from collections import deque
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from device_sim.encoding import Message
from eldercare.logs import get_logger

log = get_logger(__name__)


class PublishError(RuntimeError):
    """The broker refused or dropped a site's connection."""


class _BatchingClient(mqtt.Client):
    """paho's client with its socket writes gathered and sent by `flush_writes()`.

    paho sends every packet with its own `send()`; at tens of thousands of messages
    per second that syscall dominates. Gathering them keeps the MQTT protocol
    handling in paho and costs one `send()` per batch.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._write_buffer = bytearray()

    def _sock_send(self, buf: bytes | bytearray) -> int:
        self._write_buffer += buf
        return len(buf)

    def _sock_close(self) -> None:
        # paho closes right after queueing DISCONNECT: send it, or the broker would
        # take a clean goodbye for a lost connection and publish the Last Will.
        sock = self._sock
        if sock is not None and self._write_buffer:
            try:
                sock.setblocking(True)
                sock.sendall(self._write_buffer)
            except OSError:
                pass
        self._write_buffer.clear()
        super()._sock_close()

    def flush_writes(self) -> bool:
        """Send what is buffered; False if the socket would block (call again later)."""
        if self._sock is None:
            self._write_buffer.clear()
            return True
        while self._write_buffer:
            try:
                sent = super()._sock_send(self._write_buffer)
            except BlockingIOError:
                return False
            del self._write_buffer[:sent]
        return True

    @property
    def buffered(self) -> int:
        return len(self._write_buffer)


@dataclass(slots=True)
class _Site:
    client: _BatchingClient
    connected: bool = False
    refused: str | None = None
    # Publish sequence numbers not yet acknowledged, oldest first (a broker
    # acknowledges one connection's QoS 1 messages in order).
    unacked: deque[int] = field(default_factory=deque)


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


@dataclass(slots=True)
class MqttPublisher:
    broker: BrokerConfig
    qos: int = 1
    published: int = 0
    _sites: dict[str, _Site] = field(default_factory=dict)
    _selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    _last_misc: float = 0.0

    def connect(self, site_id: str, will: Message, timeout: float = 10.0) -> None:
        old = self._sites.pop(site_id, None)
        if old is not None:
            self._forget(old.client)
        client = _BatchingClient(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"{self.broker.client_prefix}-{site_id}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.max_inflight_messages_set(0)  # no client-side cap: pump() reads the acks
        client.max_queued_messages_set(0)
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set(ca_certs=self.broker.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(will.topic, will.payload, qos=1, retain=will.retain)
        state = _Site(client)

        def on_connect(c: mqtt.Client, u: object, flags: object, reason: object, p: object) -> None:
            if getattr(reason, "is_failure", False):
                state.refused = str(reason)
            else:
                state.connected = True

        def on_publish(c: mqtt.Client, u: object, mid: int, reason: object, p: object) -> None:
            if state.unacked:
                state.unacked.popleft()

        client.on_connect = on_connect
        client.on_publish = on_publish
        try:
            client.connect(self.broker.host, self.broker.port, keepalive=self.broker.keepalive)
        except OSError as exc:
            raise PublishError(
                f"cannot reach the broker at {self.broker.host}:{self.broker.port}: {exc}"
            ) from exc
        self._sites[site_id] = state
        sock = client.socket()
        if sock is not None:
            self._selector.register(sock, selectors.EVENT_READ, client)
        deadline = time.monotonic() + timeout
        while not state.connected:
            if state.refused is not None:
                raise PublishError(f"broker refused site {site_id}: {state.refused}")
            if time.monotonic() > deadline:
                raise PublishError(f"no CONNACK from the broker for site {site_id}")
            self.pump(0.05)

    def publish(self, site_id: str, message: Message) -> int:
        """Send one message; returns its publish sequence number (see `acked_through`)."""
        state = self._sites.get(site_id)
        if state is None:
            return self.published  # the site is cut off (simulated power cut): nothing leaves
        self.published += 1
        # Recorded first: with QoS 0, paho reports the message done inside publish().
        state.unacked.append(self.published)
        info = state.client.publish(
            message.topic, message.payload, qos=self.qos, retain=message.retain
        )
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise PublishError(f"publish to {message.topic} failed: {mqtt.error_string(info.rc)}")
        return self.published

    def acked_through(self, seq: int) -> bool:
        """Has the broker acknowledged every message up to publish number `seq`?"""
        return all(not s.unacked or s.unacked[0] > seq for s in self._sites.values())

    def wait_acked(self, seq: int) -> None:
        """Read acknowledgements until `acked_through(seq)`. Sends nothing: messages up to
        `seq` must have gone out already (`send_all`)."""
        while not self.acked_through(seq):
            self.pump(0.001, send=False)

    def send_all(self) -> None:
        """Write everything gathered to the sockets, however long a full socket takes."""
        self.pump(0.0)
        while self.buffered():
            self.pump(0.001)

    def cut(self, site_id: str) -> None:
        """Drop the site's connection without DISCONNECT: the broker publishes its Will."""
        state = self._sites.pop(site_id, None)
        if state is None:
            return
        sock = state.client.socket()
        self._forget(state.client)
        if sock is not None:
            sock.close()  # what is still buffered is lost, as in a power cut

    def pump(self, timeout: float = 0.0, send: bool = True) -> None:
        """Send what is gathered (unless `send` is False), read acks and pings, keep
        connections alive."""
        if send:
            for state in self._sites.values():
                state.client.flush_writes()
        if not self._selector.get_map():
            if timeout > 0:
                time.sleep(timeout)
            return
        for key, _ in self._selector.select(timeout):
            client: _BatchingClient = key.data
            rc = client.loop_read()
            if rc != mqtt.MQTT_ERR_SUCCESS:
                raise PublishError(f"lost the broker connection: {mqtt.error_string(rc)}")
        for state in self._sites.values():
            if state.client.want_write():
                state.client.loop_write()
        now = time.monotonic()
        if now - self._last_misc > 1.0:
            self._last_misc = now
            for state in list(self._sites.values()):
                state.client.loop_misc()

    def buffered(self) -> int:
        """Bytes gathered but not yet written to the sockets."""
        return sum(s.client.buffered for s in self._sites.values())

    def pending(self) -> int:
        """Messages not yet acknowledged by the broker (QoS 1) or not yet sent."""
        return sum(
            len(s.client._out_messages) + (s.client.buffered > 0) for s in self._sites.values()
        )

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the broker acknowledged every QoS 1 message (or the timeout)."""
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                return False
            self.pump(0.05)
        return True

    def close(self) -> None:
        self.flush(10.0)
        for state in self._sites.values():
            sock = state.client.socket()
            state.client.disconnect()  # a clean goodbye: no Last Will
            state.client.flush_writes()
            self._forget(state.client)
            if sock is not None:
                sock.close()
        self._sites.clear()

    def _forget(self, client: mqtt.Client) -> None:
        sock = client.socket()
        if sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
