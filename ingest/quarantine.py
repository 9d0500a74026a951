"""Quarantine: a bounded store of the messages ingest refused, for inspection.

Each refused message becomes one JSON line (cause, detail, topic, payload as
UTF-8 text or base64, received_at) in `<run_dir>/quarantine/quarantine-<n>.jsonl`.
Files rotate at `file_bytes` and only the newest `max_files` are kept, so a
flood of garbage cannot fill the disk; the per-cause counters keep counting
what the files no longer hold. Each cause is logged the first time and then
every `log_every`-th time, so a flood cannot fill the log either.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eldercare import metrics
from eldercare.logs import get_logger

log = get_logger(__name__)

_QUARANTINED = metrics.counter(
    "ingest_quarantined_total", "messages refused and quarantined, by cause", ["cause"]
)
MAX_STORED_PAYLOAD = 4096  # bytes of a payload kept in the file (oversize ones are cut)


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    cause: str
    detail: str
    topic: str
    payload: bytes
    payload_size: int
    received_at: float

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "cause": self.cause,
            "detail": self.detail,
            "topic": self.topic,
            "received_at": self.received_at,
            "payload_size": self.payload_size,
        }
        try:
            doc["payload"] = self.payload.decode("utf-8")
        except UnicodeDecodeError:
            doc["payload_base64"] = base64.b64encode(self.payload).decode("ascii")
        if len(self.payload) < self.payload_size:
            doc["truncated"] = True
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> QuarantinedMessage:
        if "payload_base64" in doc:
            payload = base64.b64decode(doc["payload_base64"])
        else:
            payload = str(doc.get("payload", "")).encode("utf-8")
        return cls(
            cause=doc["cause"],
            detail=doc.get("detail", ""),
            topic=doc.get("topic", ""),
            payload=payload,
            payload_size=int(doc.get("payload_size", len(payload))),
            received_at=float(doc.get("received_at", 0.0)),
        )


class Quarantine:
    def __init__(
        self,
        directory: Path,
        *,
        file_bytes: int = 4 * 1024 * 1024,
        max_files: int = 8,
        log_every: int = 1000,
    ) -> None:
        self.directory = directory
        self.file_bytes = file_bytes
        self.max_files = max_files
        self.log_every = log_every
        self.counts: Counter[str] = Counter()
        directory.mkdir(parents=True, exist_ok=True)
        numbers = self._numbers()
        self._number = numbers[-1] if numbers else 1
        self._file = open(self._path(self._number), "a", encoding="utf-8")  # noqa: SIM115

    def _path(self, number: int) -> Path:
        return self.directory / f"quarantine-{number:06d}.jsonl"

    def _numbers(self) -> list[int]:
        out = []
        for p in self.directory.glob("quarantine-*.jsonl"):
            try:
                out.append(int(p.stem.split("-", 1)[1]))
            except (IndexError, ValueError):
                continue
        return sorted(out)

    def add(self, cause: str, detail: str, topic: str, payload: bytes, received_at: float) -> None:
        """Record one refused message (written, not fsync'd: inspection, not a ledger)."""
        self.counts[cause] += 1
        _QUARANTINED.inc(cause=cause)
        n = self.counts[cause]
        if n == 1 or n % self.log_every == 0:
            log.warning(
                "message quarantined",
                extra={"cause": cause, "detail": detail[:200], "topic": topic[:200], "count": n},
            )
        entry = QuarantinedMessage(
            cause, detail, topic, payload[:MAX_STORED_PAYLOAD], len(payload), received_at
        )
        line = json.dumps(entry.to_json(), ensure_ascii=False) + "\n"
        self._file.write(line)
        if self._file.tell() >= self.file_bytes:
            self._rotate()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def _rotate(self) -> None:
        self._file.close()
        self._number += 1
        self._file = open(self._path(self._number), "a", encoding="utf-8")  # noqa: SIM115
        for old in self._numbers()[: -self.max_files]:
            with contextlib.suppress(OSError):
                os.unlink(self._path(old))


def read_quarantine(directory: Path, cause: str | None = None) -> Iterator[QuarantinedMessage]:
    """Stored entries, oldest first; a torn last line (a crash mid-write) is skipped."""
    for path in sorted(directory.glob("quarantine-*.jsonl")):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if cause is None or doc.get("cause") == cause:
                    yield QuarantinedMessage.from_json(doc)
