"""A tiny process-wide metrics registry and its Prometheus text rendering.

Every part registers its counters and gauges here by name (get-or-create, so
two modules asking for the same metric share it); the gateway serves
`render_prometheus()` at `/metrics`, and `eldercare services status` reads it.
Names are given without the `eldercare_` prefix, which rendering adds.

Hot paths increment once per batch, not per message: a counter is a dict
update under the GIL, cheap but not free.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Callable, Iterable

PREFIX = "eldercare_"
_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

LabelValues = tuple[str, ...]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Iterable[str] = ()) -> None:
        if not _NAME.match(name):
            raise ValueError(f"bad metric name {name!r}")
        self.name = name
        self.help = help
        self.labelnames: tuple[str, ...] = tuple(labelnames)
        for label in self.labelnames:
            if not _NAME.match(label):
                raise ValueError(f"bad label name {label!r}")
        self._values: dict[LabelValues, float] = {}
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[tuple[LabelValues, float]]:
        with self._lock:
            return sorted(self._values.items())

    def render(self) -> list[str]:
        full = PREFIX + self.name
        lines = [f"# HELP {full} {self.help}", f"# TYPE {full} {self.kind}"]
        samples = self.samples()
        if not samples and not self.labelnames:
            samples = [((), 0.0)]
        for key, value in samples:
            if key:
                pairs = ",".join(
                    f'{n}="{_escape_label(v)}"' for n, v in zip(self.labelnames, key, strict=True)
                )
                lines.append(f"{full}{{{pairs}}} {_format_value(value)}")
            else:
                lines.append(f"{full} {_format_value(value)}")
        return lines


class Counter(_Metric):
    """Only goes up (until the process restarts)."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels) if labels or self.labelnames else ()
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Metric):
    """A value that is set: lag seconds, queue depth, last heartbeat time."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels) if labels or self.labelnames else ()
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels) if labels or self.labelnames else ()
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._collectors: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def _get(self, cls: type[_Metric], name: str, help: str, labels: Iterable[str]) -> _Metric:
        with self._lock:
            existing = self._metrics.get(name)
            if existing is not None:
                if type(existing) is not cls or existing.labelnames != tuple(labels):
                    raise ValueError(f"metric {name!r} already registered differently")
                return existing
            metric = cls(name, help, labels)
            self._metrics[name] = metric
            return metric

    def counter(self, name: str, help: str, labels: Iterable[str] = ()) -> Counter:
        metric = self._get(Counter, name, help, tuple(labels))
        assert isinstance(metric, Counter)
        return metric

    def gauge(self, name: str, help: str, labels: Iterable[str] = ()) -> Gauge:
        metric = self._get(Gauge, name, help, tuple(labels))
        assert isinstance(metric, Gauge)
        return metric

    def add_collector(self, collect: Callable[[], None]) -> None:
        """A callback run before each rendering, to refresh gauges computed on demand."""
        with self._lock:
            self._collectors.append(collect)

    def get(self, name: str) -> _Metric | None:
        return self._metrics.get(name)

    def render(self) -> str:
        with self._lock:
            collectors = list(self._collectors)
            metrics = sorted(self._metrics.values(), key=lambda m: m.name)
        for collect in collectors:
            collect()
        lines: list[str] = []
        for metric in metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"

    def clear(self) -> None:
        """Forget every metric (tests only)."""
        with self._lock:
            self._metrics.clear()
            self._collectors.clear()


REGISTRY = Registry()


def counter(name: str, help: str, labels: Iterable[str] = ()) -> Counter:
    return REGISTRY.counter(name, help, labels)


def gauge(name: str, help: str, labels: Iterable[str] = ()) -> Gauge:
    return REGISTRY.gauge(name, help, labels)


def render_prometheus() -> str:
    """Prometheus text exposition format (version 0.0.4) of every registered metric."""
    return REGISTRY.render()


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def serve_metrics(host: str, port: int) -> asyncio.Server:
    """A minimal HTTP endpoint answering `GET /metrics`, for parts running without the
    gateway (standalone ingest). The gateway serves the same text itself."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b"/"
            if path.split(b"?")[0] == b"/metrics":
                status, body, ctype = "200 OK", render_prometheus().encode(), CONTENT_TYPE
            else:
                status, body, ctype = "404 Not Found", b"not found\n", "text/plain"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
