"""An MQTT client for the broker tests: paho on its own thread, recording what it
receives, so a test can check what a site's account may publish and read."""

from __future__ import annotations

import queue
import ssl
import uuid

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class Client:
    """A paho client on its own thread that records what it receives."""

    def __init__(
        self,
        port: int,
        user: str | None,
        password: str | None,
        tls: ssl.SSLContext | None = None,
        tls_port: int | None = None,
    ) -> None:
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connack: queue.Queue[object] = queue.Queue()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex[:12])
        if user is not None:
            self.client.username_pw_set(user, password)
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.on_connect = lambda c, u, f, reason, p: self.connack.put(reason)
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", tls_port or port)
        self.client.loop_start()

    def accepted(self) -> bool:
        reason = self.connack.get(timeout=10)
        return not getattr(reason, "is_failure", True)

    def subscribe(self, topic: str) -> None:
        done: queue.Queue[object] = queue.Queue()
        self.client.on_subscribe = lambda c, u, mid, codes, p: done.put(codes)
        self.client.subscribe(topic, qos=1)
        done.get(timeout=10)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def drain(self, marker_topic: str, marker: bytes) -> list[tuple[str, bytes]]:
        """Everything received up to the marker this client subscribed to and published
        last: the broker delivers in order, so what is missing by then never came."""
        got: list[tuple[str, bytes]] = []
        while True:
            topic, payload = self.received.get(timeout=10)
            if (topic, payload) == (marker_topic, marker):
                return got
            got.append((topic, payload))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def clear_retained(port: int, user: str, password: str) -> int:
    """Clear every retained message on the broker (an empty retained publish per topic);
    returns how many. For a test module that leaves retained messages on the shared
    session broker, where a later test subscribing to every site's topics would count them."""
    client = Client(port, user, password)
    try:
        if not client.accepted():
            raise RuntimeError("the broker refused the platform's account")
        marker_topic = f"test/clear-retained/{uuid.uuid4().hex}"
        client.subscribe("#")
        client.publish(marker_topic, b"end")  # not retained: it arrives after the retained
        topics = {topic for topic, _ in client.drain(marker_topic, b"end")}
        for topic in topics:
            client.publish(topic, b"", retain=True)
        return len(topics)
    finally:
        client.close()
