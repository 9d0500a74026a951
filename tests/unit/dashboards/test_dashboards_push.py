"""`eldercare dashboards push` against a real HTTP receiver standing in for Grafana's
API (no Grafana can run here): it records every request and answers as Grafana does
for a fresh instance (404 for what does not exist yet), then as one that has them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from dashboards.build import dashboard_docs
from dashboards.influxql import DATASOURCE_UID
from dashboards.provisioning import FOLDER_UID
from eldercare_app.cli import _register_subcommands, app

# A stand-in Grafana over real HTTP (or none at all): integration.
pytestmark = pytest.mark.integration


@dataclass
class FakeGrafanaState:
    requests: list[tuple[str, str, dict[str, str], Any]] = field(default_factory=list)
    datasources: dict[str, Any] = field(default_factory=dict)
    folders: dict[str, Any] = field(default_factory=dict)
    dashboards: dict[str, Any] = field(default_factory=dict)
    refuse_with: int | None = None


def _handler(state: FakeGrafanaState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return None

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.requests.append((self.command, self.path, dict(self.headers), body))
            return body

        def do_GET(self) -> None:
            self._record()
            if state.refuse_with:
                return self._reply(state.refuse_with, {"message": "refused"})
            if self.path.startswith("/api/datasources/uid/"):
                uid = self.path.rsplit("/", 1)[-1]
                if uid in state.datasources:
                    return self._reply(200, state.datasources[uid])
                return self._reply(404, {"message": "Data source not found"})
            if self.path.startswith("/api/folders/"):
                uid = self.path.rsplit("/", 1)[-1]
                if uid in state.folders:
                    return self._reply(200, state.folders[uid])
                return self._reply(404, {"message": "folder not found"})
            return self._reply(404, {"message": "not found"})

        def do_POST(self) -> None:
            body = self._record()
            if self.path == "/api/datasources":
                state.datasources[body["uid"]] = body
                return self._reply(200, {"message": "Datasource added", "id": 1})
            if self.path == "/api/folders":
                state.folders[body["uid"]] = body
                return self._reply(200, {"uid": body["uid"], "title": body["title"]})
            if self.path == "/api/dashboards/db":
                state.dashboards[body["dashboard"]["uid"]] = body
                return self._reply(200, {"status": "success", "uid": body["dashboard"]["uid"]})
            return self._reply(404, {"message": "not found"})

        def do_PUT(self) -> None:
            body = self._record()
            if self.path.startswith("/api/datasources/uid/"):
                state.datasources[self.path.rsplit("/", 1)[-1]] = body
                return self._reply(200, {"message": "Datasource updated"})
            return self._reply(404, {"message": "not found"})

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[str, FakeGrafanaState]]:
    state = FakeGrafanaState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


def _push(url: str, *extra: str) -> Any:
    _register_subcommands()
    return CliRunner().invoke(
        app,
        ["dashboards", "push", "--grafana", url, "--token", "glsa_test", *extra,
         "--influx-url", "http://influxdb:8086", "--influx-db", "eldercare",
         "--influx-token", "influx-secret"],
    )  # fmt: skip


def test_push_creates_then_updates_everything(grafana: tuple[str, FakeGrafanaState]) -> None:
    url, state = grafana
    first = _push(url)
    assert first.exit_code == 0, first.output
    assert "data source created; folder created" in first.output
    ds = state.datasources[DATASOURCE_UID]
    assert ds["type"] == "influxdb" and ds["url"] == "http://influxdb:8086"
    assert ds["jsonData"]["dbName"] == "eldercare" and ds["jsonData"]["version"] == "InfluxQL"
    assert ds["secureJsonData"]["httpHeaderValue1"] == "Token influx-secret"
    assert FOLDER_UID in state.folders
    expected = {d["uid"]: d for d in dashboard_docs(None)}
    assert set(state.dashboards) == set(expected)
    for uid, body in state.dashboards.items():
        assert body["overwrite"] is True and body["folderUid"] == FOLDER_UID
        assert {**body["dashboard"], "id": None} == {**expected[uid], "id": None}
    assert all(h.get("Authorization") == "Bearer glsa_test" for _, _, h, _ in state.requests)

    n = len(state.requests)
    second = _push(url)
    assert second.exit_code == 0, second.output
    assert "data source updated; folder exists" in second.output
    methods = [(m, p) for m, p, _, _ in state.requests[n:]]
    assert ("PUT", f"/api/datasources/uid/{DATASOURCE_UID}") in methods
    assert ("POST", "/api/folders") not in methods
    assert len(state.dashboards) == len(expected)


def test_push_reports_a_refusing_grafana_clearly(grafana: tuple[str, FakeGrafanaState]) -> None:
    url, state = grafana
    state.refuse_with = 401
    result = _push(url)
    assert result.exit_code == 1
    assert "error: Grafana at" in result.output
    assert not state.dashboards


def test_push_reports_an_unreachable_grafana() -> None:
    result = _push("http://127.0.0.1:9")
    assert result.exit_code == 1 and "error: Grafana at" in result.output
