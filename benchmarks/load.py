"""Background load for the platform benchmarks: native readings at a set rate, QoS 1.

Run as its own process (`python -m benchmarks.load --rate R ...`) so it never
shares a GIL with the platform or the measurement client. It speaks MQTT 3.1.1
over a plain socket (a paho client costs several times more CPU per message on
these shared cores), paces publishes to the stated rate on the wall clock, keeps
at most `--window` unacknowledged, and prints one JSON line at the end:
published, acknowledged by the broker, first/last publish wall time.

Messages cycle through the homes so each home gets one every `homes / rate`
seconds, with the stream mix of a simulated home (device_sim, one simulated day:
about half heartbeats, a quarter to a third motion, the rest other sensors):
6 heartbeats, 3 motion, 1 presence in every 10 messages of a home.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import time

from eldercare.raw_mqtt import connect, publish_packet

# (device, stream, payload body after ts) for message k % 10 of a home.
PATTERN: list[tuple[str, str, bytes]] = [
    ("gw", "heartbeat", b""),
    ("pir-bed", "motion", b',"motion":true'),
    ("radar", "heartbeat", b""),
    ("sos", "heartbeat", b""),
    ("pir-liv", "motion", b',"motion":true'),
    ("radar", "presence", b',"present":true'),
    ("bed", "heartbeat", b""),
    ("pir-bath", "motion", b',"motion":false'),
    ("door", "heartbeat", b""),
    ("pir-liv", "heartbeat", b""),
]


def run_load(
    host: str,
    port: int,
    prefix: str,
    homes: int,
    rate: float,
    duration_s: float,
    window: int = 20_000,
    username: str | None = None,
    password: str = "",
) -> dict[str, float]:
    sites = [f"{prefix}{h:05d}" for h in range(homes)]
    topics = [
        [f"eldercare/{site}/{site}-{dev}/{stream}".encode() for dev, stream, _ in PATTERN]
        for site in sites
    ]
    bodies = [body for _, _, body in PATTERN]
    sock = connect(host, port, f"bench-load-{os.getpid()}", username, password)
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    print("started", flush=True)
    sent = acked = 0
    pending = b""
    t_start = time.time()
    t_end = t_start + duration_s
    t_last = t_start

    def read_acks(wait_s: float) -> None:
        nonlocal pending, acked
        readable, _, _ = select.select([sock], [], [], wait_s)
        if not readable:
            return
        data = sock.recv(262144)
        if not data:
            raise ConnectionError("broker closed the connection")
        pending += data
        # Only PUBACKs (4 bytes each) come back to a publisher.
        acked += len(pending) // 4
        pending = pending[len(pending) // 4 * 4 :]

    while not stop:
        now = time.time()
        if now >= t_end:
            break
        due = min(int(rate * (now - t_start)) - sent, window - (sent - acked))
        if due > 0:
            batch = []
            for _ in range(due):
                home, k = divmod(sent, 10)
                home %= homes
                payload = b'{"ts":%.6f,"seq":%d%s}' % (now, sent, bodies[k])
                batch.append(publish_packet(topics[home][k], sent % 65535 + 1, payload))
                sent += 1
            sock.sendall(b"".join(batch))
            t_last = now
        read_acks(0.002)
    deadline = time.time() + 30
    while acked < sent and time.time() < deadline:
        read_acks(0.5)
    sock.sendall(b"\xe0\x00")
    sock.close()
    elapsed = max(t_last - t_start, 1e-9)
    return {
        "published": sent,
        "acked": acked,
        "t_first": t_start,
        "t_last": t_last,
        "rate": round(sent / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks.load")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--username", default=None)
    parser.add_argument("--password", default="")
    parser.add_argument("--prefix", required=True, help="site id prefix of the bench homes")
    parser.add_argument("--homes", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="messages per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    args = parser.parse_args(argv)
    result = run_load(
        args.host,
        args.port,
        args.prefix,
        args.homes,
        args.rate,
        args.duration,
        username=args.username,
        password=args.password,
    )
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
