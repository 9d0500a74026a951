"""The API's browser-facing defences: CSRF for cookie sessions, security headers on
every response, login throttling per account and per client, expired tokens, secrets
from files and kept out of logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from eldercare.clock import FakeClock
from eldercare.logs import _Formatter, redact_secrets
from eldercare.settings import Settings
from gateway.app import first_admin_password
from gateway.login_guard import LoginGuard
from gateway.security import CSRF_COOKIE, csrf_token_for
from tests.helpers.gateway import (
    PASSWORD,
    Gateway,
    build_gateway,
    db_url,
    in_process_client,
    login,
    sos,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


Gw = tuple[Gateway, httpx.AsyncClient, FakeClock]  # what the `gw` fixture yields


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gw]:
    clock = FakeClock(1_770_000_000.0)
    settings = Settings(
        run_dir=tmp_path / "run",
        database_url=db_url(tmp_path),
        public_url="https://care.example.org",
    )
    gateway = await build_gateway(settings, clock)
    await gateway.store.apply_transitions(
        [sos("hh-401", "zhang-xiuying", clock.now() - 30)], clock.now()
    )
    async with in_process_client(gateway) as client:
        yield gateway, client, clock


async def _cookie_login(client: httpx.AsyncClient, username: str) -> str:
    resp = await client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return client.cookies[CSRF_COOKIE]


async def test_forged_cross_site_request_is_refused(gw: Gw) -> None:
    _, client, _ = gw
    csrf = await _cookie_login(client, "op-bincheng")
    alert_id = (await client.get("/api/alerts")).json()[0]["id"]
    path = f"/api/alerts/{alert_id}/acknowledge"
    # Another site's form or script: the browser attaches the cookie, not the token.
    forged = await client.post(path, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert (await client.post(path)).status_code == 403  # no Origin, no token
    wrong = await client.post(path, headers={"X-CSRF-Token": "0" * 43})
    assert wrong.status_code == 403
    with_token_foreign = await client.post(
        path, headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    )
    assert with_token_foreign.status_code == 403
    assert (await client.get(f"/api/alerts/{alert_id}")).json()["alert"]["handling"] == "open"
    # The page itself: same origin, token echoed from the readable cookie.
    ok = await client.post(path, headers={"X-CSRF-Token": csrf, "Origin": "http://testserver"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["handling"] == "acknowledged"


async def test_csrf_token_is_bound_to_the_session(gw: Gw) -> None:
    _, client, _ = gw
    csrf = await _cookie_login(client, "op-bincheng")
    assert csrf == csrf_token_for(client.cookies["eldercare_session"])
    # A token of another session is useless with this one.
    other = csrf_token_for("someone-elses-session")
    assert (await client.post("/api/auth/logout", headers={"X-CSRF-Token": other})).status_code == (
        403
    )
    # Pages opened before the cookie existed get it again from /api/auth/me.
    client.cookies.delete(CSRF_COOKIE)
    resp = await client.get("/api/auth/me")
    assert resp.status_code == 200 and CSRF_COOKIE in resp.headers["set-cookie"]


async def test_bearer_requests_need_no_csrf_token(gw: Gw) -> None:
    _, client, _ = gw
    op = await login(client, "op-bincheng")
    alert_id = (await client.get("/api/alerts", headers=op)).json()[0]["id"]
    resp = await client.post(f"/api/alerts/{alert_id}/acknowledge", headers=op)
    assert resp.status_code == 200, resp.text


async def test_login_from_another_site_is_refused(gw: Gw) -> None:
    _, client, _ = gw
    body = {"username": "op-bincheng", "password": PASSWORD}
    resp = await client.post(
        "/api/auth/login", json=body, headers={"Origin": "https://evil.example"}
    )
    assert resp.status_code == 403
    # Behind the proxy the public origin is the page's own.
    resp = await client.post(
        "/api/auth/login", json=body, headers={"Origin": "https://care.example.org"}
    )
    assert resp.status_code == 200


@pytest.mark.parametrize(
    "path", ["/login", "/console", "/api/auth/me", "/healthz", "/static/common.js", "/nowhere"]
)
async def test_security_headers_on_every_response(gw: Gw, path: str) -> None:
    _, client, _ = gw
    resp = await client.get(path)
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["referrer-policy"] == "same-origin"
    assert "camera=()" in resp.headers["permissions-policy"]
    # public_url is https (behind a TLS proxy): browsers are told to stay on https.
    assert resp.headers["strict-transport-security"].startswith("max-age=")


async def test_no_hsts_on_plain_http_without_an_https_public_url(tmp_path: Path) -> None:
    clock = FakeClock(1_770_000_000.0)
    settings = Settings(run_dir=tmp_path / "run", database_url=db_url(tmp_path))
    gateway = await build_gateway(settings, clock, with_accounts=False)
    transport = httpx.ASGITransport(app=gateway.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        resp = await client.get("/healthz")
    assert "strict-transport-security" not in resp.headers
    assert resp.headers["x-frame-options"] == "DENY"
    await gateway.engine.dispose()


async def test_pages_have_no_inline_script() -> None:
    static = Path(__file__).parents[3] / "gateway" / "static"
    for page in static.glob("*.html"):
        html = page.read_text()
        assert "<script>" not in html and " on" + "click=" not in html, page.name
        assert "<style>" not in html and "style=" not in html, page.name


async def test_locked_account_stays_locked_even_with_the_right_password(gw: Gw) -> None:
    _, client, clock = gw
    wrong = {"username": "op-bincheng", "password": "guess-guess-guess"}
    for _ in range(10):
        assert (await client.post("/api/auth/login", json=wrong)).status_code == 401
    for minutes in (1, 7, 14):
        clock.set(1_770_000_000.0 + minutes * 60)
        right = await client.post("/api/auth/login", json={**wrong, "password": PASSWORD})
        assert right.status_code == 429, minutes
    clock.set(1_770_000_000.0 + 15 * 60 + 1)
    assert await login(client, "op-bincheng")


async def test_one_client_guessing_across_user_names_is_slowed_down(gw: Gw) -> None:
    _, client, clock = gw
    # A few guesses at each of many names: no single account reaches its limit.
    for i in range(30):
        body = {"username": f"user{i}", "password": "guess-guess-guess"}
        assert (await client.post("/api/auth/login", json=body)).status_code == 401
    resp = await client.post(
        "/api/auth/login", json={"username": "op-bincheng", "password": PASSWORD}
    )
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    clock.advance(15 * 60 + 1)
    assert await login(client, "op-bincheng")


async def test_login_guard_keys_clients_apart() -> None:
    guard = LoginGuard(max_failures=3, window_s=60.0, max_client_failures=5)
    for i in range(5):
        guard.failed(f"u{i}", "10.0.0.1", now=float(i))
    assert guard.retry_after("anyone", "10.0.0.1", now=5.0) == pytest.approx(55.0)
    assert guard.retry_after("anyone", "10.0.0.2", now=5.0) is None
    assert guard.retry_after("anyone", "10.0.0.1", now=60.5) is None  # oldest expired


async def test_expired_session_and_bearer_tokens_are_refused(gw: Gw) -> None:
    _, client, clock = gw
    await _cookie_login(client, "op-bincheng")
    bearer = await login(client, "op-zhanhua")
    clock.advance(12 * 3600 + 1)  # a session lasts one long shift
    assert (await client.get("/api/auth/me")).status_code == 401
    assert (await client.get("/api/auth/me", headers=bearer)).status_code == 200
    clock.advance(30 * 86400)
    assert (await client.get("/api/auth/me", headers=bearer)).status_code == 401


async def test_secrets_come_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (
        ("MQTT_PASSWORD", "mqtt-secret"),
        ("INFLUX_TOKEN", "influx-secret"),
        ("INFLUX_PASSWORD", "influx-pw"),
        ("DATABASE_URL", "postgresql+asyncpg://u:pw@db/eldercare"),
        ("ADMIN_PASSWORD", "admin-password-123"),
    ):
        secret = tmp_path / name.lower()
        secret.write_text(value + "\n")
        monkeypatch.delenv(f"ELDERCARE_{name}", raising=False)
        monkeypatch.setenv(f"ELDERCARE_{name}_FILE", str(secret))
    settings = Settings(run_dir=tmp_path)
    assert settings.mqtt_password == "mqtt-secret"
    assert settings.influx_token == "influx-secret"
    assert settings.influx_password == "influx-pw"
    assert settings.database_url == "postgresql+asyncpg://u:pw@db/eldercare"
    assert first_admin_password() == "admin-password-123"
    # A variable set directly still wins over its file.
    monkeypatch.setenv("ELDERCARE_MQTT_PASSWORD", "from-env")
    assert Settings(run_dir=tmp_path).mqtt_password == "from-env"


async def test_secrets_never_reach_a_log_line() -> None:
    record = logging.LogRecord(
        "apprise",
        logging.WARNING,
        __file__,
        1,
        "could not send to %s with Authorization: Bearer %s",
        ("mailto://ann:pa55w0rd@mail.example.org", "tok-abcdefghijkl"),
        None,
    )
    record.url = "wecombot://0123456789abcdef"
    record.password = "hunter2-hunter2"
    for as_json in (False, True):
        line = _Formatter(as_json=as_json).format(record)
        for secret in ("pa55w0rd", "tok-abcdefghijkl", "0123456789abcdef", "hunter2-hunter2"):
            assert secret not in line, line
    assert redact_secrets("http://127.0.0.1:8080/console") == "http://127.0.0.1:8080/console"
