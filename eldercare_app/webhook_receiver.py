"""A real HTTP server that takes Apprise `json://` posts: the stand-in for a phone.

The latency benchmark times the first notification of an alert with it; `make demo`
points every simulated contact at one and keeps what arrives in a JSONL journal, so
notifications can be seen without an SMS gateway. The request path (after `/`) is the
arrival's key, e.g. `json://127.0.0.1:PORT/<site>/<contact>`.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Arrival:
    at: float  # wall time it reached the receiver
    key: str
    doc: dict[str, Any]


class WebhookReceiver:
    """Threaded HTTP server on 127.0.0.1 (a free port unless given); keeps every
    arrival in memory and, with `journal`, appends it to that JSONL file."""

    def __init__(self, journal: Path | None = None, port: int = 0) -> None:
        self.arrivals: list[Arrival] = []
        self.lock = threading.Lock()
        self.journal = journal
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    doc = json.loads(raw.decode("utf-8"))
                except ValueError:  # not Apprise's JSON: refuse it, keep nothing
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.record(Arrival(at, self.path.strip("/"), doc))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}"

    def record(self, arrival: Arrival) -> None:
        with self.lock:
            self.arrivals.append(arrival)
            if self.journal is not None:
                line = {
                    "received": datetime.fromtimestamp(arrival.at, UTC).isoformat(),
                    "to": arrival.key,
                    **{k: arrival.doc.get(k) for k in ("type", "title", "message")},
                }
                with contextlib.suppress(OSError), self.journal.open("a") as out:
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def first(self, key: str, since: float, text: str) -> Arrival | None:
        with self.lock:
            for a in self.arrivals:
                blob = json.dumps(a.doc, ensure_ascii=False)
                if a.key == key and a.at >= since and text in blob:
                    return a
        return None
