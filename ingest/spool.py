"""An on-disk, append-only spool of line-protocol batches for when InfluxDB is away.

Segments are files `<run_dir>/spool/<number>.spool`, each a sequence of records
`[length u32][crc32 u32][batch bytes]` (a batch: lines joined by newlines,
exactly the body of one `/write`). Every append is fsync'd before it returns,
so a spooled batch is durable and the MQTT messages behind it may be
acknowledged. A record torn by a crash fails its length or checksum and is
skipped: it was never fsync'd, so it was never acknowledged, and the broker
redelivers it.

Draining goes oldest segment first, record by record; `seal()` closes the
segment being appended so it can be drained while new batches go to a fresh one.
A segment is removed only after all its records are in InfluxDB; a crash during
draining writes some records twice, which is harmless (idempotent points).

Bounded: an append that would take the spool past `max_bytes`, or leave less than
`min_free_bytes` free on its file system (which the alert store usually shares), raises
`SpoolFull` instead. The batch is then not durable, so its MQTT messages stay
unacknowledged with the broker (whose persistent session keeps them) while the
detectors, which got the readings before the write, keep watching; nothing is lost
until the broker's own queue limit, and the disk never fills.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from eldercare.errors import EldercareError
from eldercare.logs import get_logger

log = get_logger(__name__)

_HEADER = struct.Struct(">II")
SUFFIX = ".spool"


class SpoolFull(EldercareError, OSError):
    """The spool may not grow: at its size cap, or the disk at its free-space floor."""


class Spool:
    def __init__(
        self,
        directory: Path,
        segment_bytes: int = 16 * 1024 * 1024,
        max_bytes: int | None = None,
        min_free_bytes: int = 0,
    ) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._current: BinaryIO | None = None
        self._current_path: Path | None = None
        existing = self._segment_numbers()
        self._next_number = (existing[-1] + 1) if existing else 1
        self.bytes = self.size_bytes()  # kept up to date by append and remove

    # -- appending ------------------------------------------------------------
    def append(self, body: bytes) -> None:
        """Append one batch and fsync it, or raise `SpoolFull`. Blocking: call from a
        worker thread."""
        record = _HEADER.pack(len(body), zlib.crc32(body)) + body
        self._check_room(len(record))
        if self._current is None or self._current.tell() >= self.segment_bytes:
            self._open_new()
        assert self._current is not None
        self._current.write(record)
        self._current.flush()
        os.fsync(self._current.fileno())
        self.bytes += len(record)

    def _check_room(self, n: int) -> None:
        if self.max_bytes is not None and self.bytes + n > self.max_bytes:
            raise SpoolFull(f"spool at its cap ({self.bytes} of {self.max_bytes} bytes)")
        if self.min_free_bytes:
            st = os.statvfs(self.directory)
            free = st.f_bavail * st.f_frsize
            if free - n < self.min_free_bytes:
                raise SpoolFull(
                    f"disk of the spool at its free-space floor ({free} bytes free, "
                    f"keeping {self.min_free_bytes})"
                )

    def seal(self) -> None:
        """Close the segment being appended; the next append starts a new one."""
        if self._current is not None:
            self._current.close()
            self._current = None
            self._current_path = None

    def close(self) -> None:
        self.seal()

    def _open_new(self) -> None:
        self.seal()
        path = self.directory / f"{self._next_number:012d}{SUFFIX}"
        self._next_number += 1
        self._current = open(path, "ab")  # noqa: SIM115 - held open across appends
        self._current_path = path
        # Make the new file's directory entry durable too.
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # -- draining --------------------------------------------------------------
    def _segment_numbers(self) -> list[int]:
        numbers = []
        for p in self.directory.glob(f"*{SUFFIX}"):
            try:
                numbers.append(int(p.stem))
            except ValueError:
                continue
        return sorted(numbers)

    def segments(self) -> list[Path]:
        """Segments in order, oldest first (including the one being appended)."""
        return [self.directory / f"{n:012d}{SUFFIX}" for n in self._segment_numbers()]

    def sealed_segments(self) -> list[Path]:
        return [p for p in self.segments() if p != self._current_path]

    @staticmethod
    def read(path: Path) -> Iterator[bytes]:
        """The intact records of a segment, in order; stops at a torn tail."""
        with open(path, "rb") as f:
            while True:
                header = f.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    return
                length, crc = _HEADER.unpack(header)
                body = f.read(length)
                if len(body) < length or zlib.crc32(body) != crc:
                    log.warning("spool: torn record skipped", extra={"segment": path.name})
                    return
                yield body

    def remove(self, path: Path) -> None:
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        path.unlink(missing_ok=True)
        self.bytes = max(0, self.bytes - size)

    def is_empty(self) -> bool:
        return not self._segment_numbers()

    def size_bytes(self) -> int:
        total = 0
        for p in self.segments():
            try:
                total += p.stat().st_size
            except OSError:
                continue
        return total
