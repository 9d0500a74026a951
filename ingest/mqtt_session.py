"""The ingest's MQTT session: paho-mqtt on the asyncio loop, acknowledged by hand.

Why not aiomqtt: it acknowledges a QoS 1 message as soon as it is received, so a
crash between receipt and InfluxDB would lose it. Here paho runs with
`manual_ack=True` and the caller acknowledges (`ack`) only what it has durably
handled; whatever is unacknowledged when the process dies, the broker
redelivers to the same persistent session (fixed client id, MQTT 5 clean start
off with a session expiry), so nothing is lost and duplicates are harmless.

paho's socket is driven by the event loop (`add_reader`/`add_writer`, paho's
external-loop API), so no thread and no lock sits between the network and the
pipeline. Flow control: the broker sends at most `receive_maximum` messages
that are not yet acknowledged, and a bounded queue stops reading the socket when
the pipeline falls behind (TCP then pushes back on the broker).

A `MqttConnection` is one connection: an async context manager whose `batches()`
is an async iterator. The reconnect loop, with its backoff, sits outside it in
the caller (`ingest.service`), where it is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from eldercare.errors import EldercareError
from eldercare.logs import get_logger
from ingest.paho_fast_client import LeanClient

log = get_logger(__name__)

_PACKETS_PER_WAKEUP = 20_000  # bounded so the loop stays responsive under a flood


class MqttError(EldercareError, ConnectionError):
    """The connection could not be made or was lost; reconnect with backoff."""


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str
    port: int
    client_id: str
    topics: Sequence[str]
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    keepalive: int = 30
    # "3.1.1": clean_session=False, the session lives until the broker drops it. "5": clean
    # start off and a session expiry. 3.1.1 is the default because paho parses an MQTT 5
    # property block on every PUBLISH, which costs ~40% of the receive path.
    protocol: str = "3.1.1"
    # MQTT 5: the broker keeps the session (and queues QoS 1 messages) this long offline.
    session_expiry_s: int = 7 * 86400
    # MQTT 5: unacknowledged QoS 1 messages the broker may have in flight to us. (3.1.1: the
    # broker's own limit, e.g. mosquitto's max_inflight_messages.)
    receive_maximum: int = 1000  # larger windows slow mosquitto down (linear inflight lists)
    # Messages held between the socket and the pipeline before reading pauses.
    queue_max: int = 20_000
    connect_timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> MqttConfig:
        base: dict[str, Any] = dict(
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            client_id=settings.mqtt_client_id,
            topics=tuple(settings.mqtt_topics),
            username=settings.mqtt_username,
            password=settings.mqtt_password,
            tls=settings.mqtt_tls,
            ca_file=settings.mqtt_ca_file,
        )
        base.update(overrides)
        return cls(**base)


class InboundMessage(NamedTuple):
    """One received PUBLISH. A named tuple: built for every message on the receive
    path, ~4× cheaper than a frozen dataclass and as immutable."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    received_at: float
    # Which connection delivered it: a packet id is only meaningful on that connection.
    connection: int
    # Set when the topic was not UTF-8 (then `topic` is a printable stand-in).
    bad_topic: bool = False


class Backoff:
    """Exponential backoff with a cap; `reset` after a connection that worked."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return delay

    def reset(self) -> None:
        self._next = self.initial


_connection_counter = 0


class MqttConnection:
    """One connection to the broker with a persistent session.

    ``async with MqttConnection(cfg) as conn:`` connects and subscribes (QoS 1),
    raising `MqttError` if it cannot; ``async for batch in conn.batches():``
    yields lists of messages as they arrive and raises `MqttError` when the
    connection is lost. `ack(batch)` acknowledges messages of this connection.
    """

    def __init__(self, config: MqttConfig) -> None:
        global _connection_counter
        _connection_counter += 1
        self.config = config
        self.id = _connection_counter
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._queue: deque[InboundMessage] = deque()
        self._ready = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._arrived = asyncio.Event()
        self._lost: BaseException | None = None
        self._sock: Any = None
        self._reading = False
        self._writing = False
        self._paused = False
        self._misc_task: asyncio.Task[None] | None = None
        self._sub_mid: int | None = None
        self._wakeup_at = time.time()  # wall time of the current socket read: receive time
        self.session_present = False
        self.received = 0
        self.acked = 0
        self._client = self._make_client()

    # -- setup -------------------------------------------------------------
    def _make_client(self) -> LeanClient:
        cfg = self.config
        if cfg.protocol not in ("3.1.1", "5"):
            raise ValueError(f"MQTT protocol {cfg.protocol!r}: use 3.1.1 or 5")
        v5 = cfg.protocol == "5"
        client = LeanClient(
            CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        client.max_inflight_messages_set(max(20, min(cfg.receive_maximum, 65535)))
        client.max_queued_messages_set(0)
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls:
            context = ssl.create_default_context(cafile=str(cfg.ca_file) if cfg.ca_file else None)
            client.tls_set_context(context)
        client.connect_timeout = cfg.connect_timeout
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message  # MQTT 5 and QoS 2
        client.raw_handler = self._on_publish
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    async def __aenter__(self) -> MqttConnection:
        cfg = self.config
        if cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = cfg.session_expiry_s
            props.ReceiveMaximum = max(1, min(cfg.receive_maximum, 65535))

            def connect() -> Any:
                return self._client.connect(
                    cfg.host, cfg.port, cfg.keepalive, clean_start=False, properties=props
                )
        else:

            def connect() -> Any:
                return self._client.connect(cfg.host, cfg.port, cfg.keepalive)

        try:
            # connect() resolves and opens the TCP socket: blocking, so off the loop.
            await self._loop.run_in_executor(None, connect)
            async with asyncio.timeout(cfg.connect_timeout):
                await self._ready.wait()
            self._raise_if_lost()
            result, self._sub_mid = self._client.subscribe([(t, 1) for t in cfg.topics])
            if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise MqttError(f"subscribe failed: {paho.error_string(result)}")
            async with asyncio.timeout(cfg.connect_timeout):
                await self._subscribed.wait()
            self._raise_if_lost()
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            await self.close()
            raise MqttError(f"cannot connect to {cfg.host}:{cfg.port}: {exc!r}") from exc
        except BaseException:
            await self.close()
            raise
        self._misc_task = asyncio.create_task(self._misc_loop(), name="mqtt-misc")
        log.info(
            "mqtt connected",
            extra={
                "broker": f"{cfg.host}:{cfg.port}",
                "client_id": cfg.client_id,
                "session_present": self.session_present,
            },
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._misc_task is not None:
            self._misc_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._misc_task
            self._misc_task = None
        if self._sock is not None and self._lost is None:
            # A clean DISCONNECT; the session (and unacked messages) stays on the broker.
            with contextlib.suppress(Exception):
                self._client.disconnect()
                self._client.loop_write()
        self._lost = self._lost or MqttError("closed")
        with contextlib.suppress(Exception):
            self._client._sock_close()  # closes the socket; paho calls on_socket_close
        self._unregister()
        self._arrived.set()

    # -- the iterator --------------------------------------------------------
    async def batches(self, max_messages: int = 5000) -> AsyncIterator[list[InboundMessage]]:
        """Yield what has arrived (at least one message, at most `max_messages`)."""
        while True:
            while not self._queue:
                self._raise_if_lost()
                self._arrived.clear()
                await self._arrived.wait()
            queue = self._queue
            n = min(len(queue), max_messages)
            batch = [queue.popleft() for _ in range(n)]
            if self._paused and len(queue) < self.config.queue_max // 2:
                self._resume_reading()
            yield batch

    def __aiter__(self) -> AsyncIterator[InboundMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[InboundMessage]:
        async for batch in self.batches():
            for message in batch:
                yield message

    def ack(self, messages: Sequence[InboundMessage]) -> int:
        """Acknowledge, in order, the QoS 1 messages this connection delivered.
        Messages of an earlier connection are skipped: the broker redelivers them."""
        if self._lost is not None:
            return 0
        this = self.id
        mids = [m.mid for m in messages if m.qos == 1 and m.connection == this]
        if mids:
            rc = self._client.ack_many(mids)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._connection_failed(rc)
                return 0
            self.acked += len(mids)
            self._flush_writes()
        return len(mids)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def connected(self) -> bool:
        return self._lost is None and self._ready.is_set()

    # -- paho callbacks (run on the loop thread) ------------------------------
    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self._lost = MqttError(f"broker refused the connection: {reason}")
            self._ready.set()
            return
        self.session_present = bool(flags.session_present)
        self._ready.set()

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            log.error("subscription refused", extra={"reasons": failed})
        self._subscribed.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._lost is None:
            self._lost = MqttError(f"connection lost: {reason}")
        self._ready.set()
        self._subscribed.set()
        self._arrived.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._on_publish(msg._topic, bytes(msg.payload), msg.qos, msg.mid, msg.retain)

    def _on_publish(
        self, raw_topic: bytes, payload: bytes, qos: int, mid: int, retain: bool
    ) -> None:
        try:
            topic = raw_topic.decode("utf-8")
            bad = False
        except UnicodeDecodeError:
            topic = raw_topic.decode("utf-8", "backslashreplace")
            bad = True
        self._queue.append(
            InboundMessage(topic, payload, qos, mid, retain, self._wakeup_at, self.id, bad)
        )
        self.received += 1
        if len(self._queue) >= self.config.queue_max and not self._paused:
            self._pause_reading()

    # -- socket plumbing --------------------------------------------------------
    def _in_loop(self, fn: Any, *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._in_loop(self._register, sock)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._in_loop(self._unregister)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if not self._writing:
            self._in_loop(self._add_writer)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self._writing:
            self._in_loop(self._remove_writer)

    def _register(self, sock: Any) -> None:
        self._sock = sock
        self._client.reset_buffer()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._resume_reading()
        if self._client.want_write():
            self._add_writer()

    def _unregister(self) -> None:
        sock = self._sock
        if sock is None:
            return
        with contextlib.suppress(Exception):
            self._loop.remove_reader(sock)
        with contextlib.suppress(Exception):
            self._loop.remove_writer(sock)
        self._reading = self._writing = False
        self._sock = None

    def _add_writer(self) -> None:
        if self._sock is not None and not self._writing:
            self._writing = True
            self._loop.add_writer(self._sock, self._on_writable)

    def _remove_writer(self) -> None:
        if self._sock is not None and self._writing:
            self._writing = False
            self._loop.remove_writer(self._sock)

    def _pause_reading(self) -> None:
        self._paused = True
        if self._sock is not None and self._reading:
            self._loop.remove_reader(self._sock)
            self._reading = False

    def _resume_reading(self) -> None:
        self._paused = False
        if self._sock is not None and not self._reading:
            self._loop.add_reader(self._sock, self._on_readable)
            self._reading = True
            if self._client.buffered():
                self._loop.call_soon(self._on_readable)

    def _on_readable(self) -> None:
        client = self._client
        client.would_block = False
        self._wakeup_at = time.time()
        before = self.received
        for _ in range(_PACKETS_PER_WAKEUP):
            rc = client.loop_read()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._connection_failed(rc)
                return
            if client.would_block or self._paused:
                break
        if self.received != before:
            self._arrived.set()
        if client.want_write():
            self._flush_writes()

    def _on_writable(self) -> None:
        rc = self._client.loop_write()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._connection_failed(rc)

    def _flush_writes(self) -> None:
        if self._sock is None:
            return
        rc = self._client.loop_write()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._connection_failed(rc)

    def _connection_failed(self, rc: MQTTErrorCode) -> None:
        if self._lost is None:
            self._lost = MqttError(f"connection lost: {paho.error_string(rc)}")
        self._unregister()
        self._ready.set()
        self._subscribed.set()
        self._arrived.set()

    async def _misc_loop(self) -> None:
        # Keepalive pings and ping timeouts; paho's loop_misc does both.
        while self._lost is None:
            await asyncio.sleep(1.0)
            rc = self._client.loop_misc()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._connection_failed(rc)
                return
            self._flush_writes()

    def _raise_if_lost(self) -> None:
        if self._lost is not None:
            raise self._lost
