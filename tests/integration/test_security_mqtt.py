"""MQTT accounts and ACL on a real Mosquitto: anonymous and wrong passwords refused, a
site's account confined to its own topics, TLS with the run directory's own CA."""

from __future__ import annotations

import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from eldercare.registry_apply import validate_registry
from eldercare.registry_model import RegistryDocument
from eldercare.settings import load_settings
from eldercare_app.local_services import LocalServices, Mosquitto
from eldercare_app.mqtt_accounts import (
    PLATFORM_USER,
    MqttAuthError,
    acl_text,
    hash_password,
    issue_credentials,
    read_password_file,
    reload_broker,
    verify_password,
    write_acl,
)
from tests.helpers.mqtt import Client


def _registry(*extra_sites: dict[str, object]) -> RegistryDocument:
    def site(site_id: str, devices: list[dict[str, object]]) -> dict[str, object]:
        return {
            "id": site_id,
            "kind": "home",
            "name": site_id,
            "organisation": "city/district",
            "rooms": [{"id": "bedroom", "kind": "bedroom"}],
            "devices": devices,
        }

    return validate_registry(
        {
            "sites": [
                site(
                    "home-a",
                    [
                        {"id": "a-bed", "kind": "bed", "room": "bedroom",
                         "vendor": {"z2m": {"base_topic": "zigbee2mqtt",
                                            "friendly_name": "a/bed strap"}}},
                        {"id": "a-plug", "kind": "motion",
                         "vendor": {"shelly": {"device_id": "shellymotion-A1"}}},
                        {"id": "a-th", "kind": "motion",
                         "vendor": {"tasmota": {"topic": "tasmota_a"}}},
                    ],
                ),
                site(
                    "home-b",
                    [
                        {"id": "b-bed", "kind": "bed", "room": "bedroom",
                         "vendor": {"z2m": {"base_topic": "zigbee2mqtt",
                                            "friendly_name": "b/bed"}}},
                    ],
                ),
                *extra_sites,
            ]
        }
    )  # fmt: skip


# --------------------------------------------------------------------------- pure parts


def test_password_hash_is_mosquittos_pbkdf2_format() -> None:
    encoded = hash_password("s3cret", iterations=101, salt=b"0123456789ab")
    assert encoded.startswith("$7$101$")
    assert verify_password("s3cret", encoded)
    assert not verify_password("s3cret!", encoded)
    assert not verify_password("s3cret", "$6$x$y")


def test_acl_confines_each_site_to_its_topics() -> None:
    text = acl_text(_registry()).text
    blocks: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("user "):
            current = blocks.setdefault(line, [])
        elif line.startswith("topic "):
            current.append(line)
    assert blocks[f"user {PLATFORM_USER}"] == ["topic readwrite #", "topic read $SYS/#"]
    site_a = blocks["user home-a"]
    assert "topic readwrite eldercare/home-a/#" in site_a
    # zigbee2mqtt's base topic is shared by two sites: granted per friendly name only.
    assert "topic readwrite zigbee2mqtt/a/bed strap" in site_a
    assert "topic readwrite zigbee2mqtt/a/bed strap/set" in site_a
    assert not any(line.endswith("bed strap/#") for line in site_a)
    assert not any(line.endswith("zigbee2mqtt/#") for line in site_a)
    assert "topic readwrite shellies/shellymotion-A1/#" in site_a
    assert "topic readwrite tele/tasmota_a/#" in site_a
    assert "topic read cmnd/tasmota_a/#" in site_a
    assert not any("home-b" in line or "b/bed" in line for line in site_a)


def test_a_base_topic_of_one_site_alone_is_granted_whole() -> None:
    doc = _registry(
        {
            "id": "home-c",
            "kind": "home",
            "name": "c",
            "organisation": "city",
            "devices": [
                {"id": "c-door", "kind": "door",
                 "vendor": {"z2m": {"base_topic": "z2m-home-c", "friendly_name": "door"}}},
            ],
        }
    )  # fmt: skip
    assert "topic readwrite z2m-home-c/#" in acl_text(doc).text.split("user home-c")[1]


@pytest.mark.parametrize("name", ["x\ntopic readwrite #", "evil/#", "a/+/b"])
def test_names_that_would_widen_or_inject_acl_lines_leave_the_site_without_account(
    name: str,
) -> None:
    doc = _registry(
        {
            "id": "home-x",
            "kind": "home",
            "name": "x",
            "organisation": "city",
            "devices": [
                {"id": "x-1", "kind": "door",
                 "vendor": {"z2m": {"base_topic": "zigbee2mqtt", "friendly_name": name}}},
            ],
        }
    )  # fmt: skip
    acl = acl_text(doc)
    assert "home-x" in acl.skipped and "home-x" not in acl.sites
    assert "user home-x" not in acl.text
    assert acl.text.count("topic readwrite #") == 1  # the platform's only


def test_credentials_are_printed_once_stored_hashed_and_rotated(tmp_path: Path) -> None:
    files = Mosquitto(tmp_path, auth=True).broker_files
    issued = {s.user: s for s in issue_credentials(files, _registry())}
    assert set(issued) == {PLATFORM_USER, "home-a", "home-b"}
    stored = read_password_file(files.password_file)
    for user, secret in issued.items():
        assert verify_password(secret.password, stored[user])
        assert secret.password not in files.password_file.read_text()
    assert files.password_file.stat().st_mode & 0o077 == 0
    assert files.platform_secret.read_text().strip() == issued[PLATFORM_USER].password
    # A second run creates nothing; a rotation replaces exactly the chosen account.
    assert issue_credentials(files, _registry()) == []
    (rotated,) = issue_credentials(files, _registry(), only=["home-a"], rotate=True)
    assert rotated.rotated and rotated.user == "home-a"
    after = read_password_file(files.password_file)
    assert verify_password(rotated.password, after["home-a"])
    assert after["home-b"] == stored["home-b"]
    with pytest.raises(MqttAuthError, match="home-z"):
        issue_credentials(files, _registry(), only=["home-z"])


# --------------------------------------------------------------------------- real broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, dict[str, str]]]:
    mosquitto = Mosquitto(tmp_path, auth=True)
    secrets = {s.user: s.password for s in issue_credentials(mosquitto.broker_files, _registry())}
    mosquitto.start()
    yield mosquitto, secrets
    mosquitto.stop()


def test_anonymous_and_wrong_passwords_are_refused(
    broker: tuple[Mosquitto, dict[str, str]],
) -> None:
    mosquitto, secrets = broker
    port = mosquitto.port or 0
    for user, password in [(None, None), ("home-a", "wrong"), (PLATFORM_USER, secrets["home-a"])]:
        client = Client(port, user, password)
        assert not client.accepted(), f"{user} with a bad password was let in"
        client.close()
    good = Client(port, "home-a", secrets["home-a"])
    assert good.accepted()
    good.close()


def test_a_site_account_publishes_only_into_its_own_topics(
    broker: tuple[Mosquitto, dict[str, str]],
) -> None:
    mosquitto, secrets = broker
    port = mosquitto.port or 0
    platform = Client(port, PLATFORM_USER, secrets[PLATFORM_USER])
    assert platform.accepted()
    for topic in ["eldercare/#", "zigbee2mqtt/#", "shellies/#", "tele/#", "marker"]:
        platform.subscribe(topic)
    device_a = Client(port, "home-a", secrets["home-a"])
    assert device_a.accepted()
    allowed = [
        "eldercare/home-a/a-bed/bed",
        "zigbee2mqtt/a/bed strap",
        "zigbee2mqtt/a/bed strap/availability",
        "shellies/shellymotion-A1/sensor/motion",
        "tele/tasmota_a/SENSOR",
    ]
    refused = [
        "eldercare/home-b/b-bed/bed",  # another home's native topic
        "zigbee2mqtt/b/bed",  # another home's zigbee device
        "zigbee2mqtt/bridge/state",  # the shared bridge
        "shellies/other/sensor/motion",
        "eldercare/home-a-evil/x/y",
    ]
    for topic in allowed + refused:
        device_a.publish(topic, b"{}")
    platform.publish("marker", b"end")
    got = [t for t, _ in platform.drain("marker", b"end")]
    assert got == allowed
    device_a.close()
    platform.close()


def test_a_site_cannot_read_another_sites_retained_messages(
    broker: tuple[Mosquitto, dict[str, str]],
) -> None:
    mosquitto, secrets = broker
    port = mosquitto.port or 0
    b_gateway = Client(port, "home-b", secrets["home-b"])
    assert b_gateway.accepted()
    b_gateway.publish("eldercare/home-b/b-bed/availability", b"online", retain=True)
    a_gateway = Client(port, "home-a", secrets["home-a"])
    assert a_gateway.accepted()
    a_gateway.publish("eldercare/home-a/a-bed/availability", b"online", retain=True)
    a_gateway.subscribe("eldercare/#")
    a_gateway.subscribe("eldercare/home-a/marker")
    a_gateway.publish("eldercare/home-a/marker", b"end")
    got = a_gateway.drain("eldercare/home-a/marker", b"end")
    assert got == [("eldercare/home-a/a-bed/availability", b"online")]
    a_gateway.close()
    b_gateway.close()


def test_a_registry_change_reaches_the_running_broker_on_reload(
    broker: tuple[Mosquitto, dict[str, str]],
) -> None:
    mosquitto, secrets = broker
    port = mosquitto.port or 0
    files = mosquitto.broker_files
    platform = Client(port, PLATFORM_USER, secrets[PLATFORM_USER])
    assert platform.accepted()
    platform.subscribe("eldercare/#")
    platform.subscribe("marker")
    # home-b leaves the registry: its account and grants go.
    only_a = RegistryDocument(sites=[s for s in _registry().sites if s.id == "home-a"])
    issue_credentials(files, only_a)
    write_acl(files, only_a)
    assert reload_broker(files)
    # Mosquitto rereads its files on SIGHUP asynchronously; a refused connect shows it has.
    for _ in range(50):
        client = Client(port, "home-b", secrets["home-b"])
        accepted = client.accepted()
        client.close()
        if not accepted:
            break
    assert not accepted
    platform.close()


def test_services_up_creates_the_platform_account_and_records_it(tmp_path: Path) -> None:
    services = LocalServices(tmp_path, mqtt_auth=True)
    try:
        services.mosquitto.start()
        services.write_env()
        env_file = tmp_path / "services" / "env"
        assert env_file.stat().st_mode & 0o077 == 0
        settings = load_settings(run_dir=tmp_path)
        assert settings.mqtt_username == PLATFORM_USER
        assert settings.mqtt_password == services.mosquitto.platform_password()
        secret = services.mosquitto.broker_files.platform_secret
        assert secret.stat().st_mode & 0o077 == 0
        client = Client(settings.mqtt_port, settings.mqtt_username, settings.mqtt_password)
        assert client.accepted()
        client.close()
        # The local account is not offered to a broker configured elsewhere.
        elsewhere = load_settings(run_dir=tmp_path, mqtt_host="broker.example", mqtt_port=8883)
        assert elsewhere.mqtt_password is None
    finally:
        services.mosquitto.stop()


def test_tls_listener_with_the_local_ca(tmp_path: Path) -> None:
    services = LocalServices(tmp_path, mqtt_tls=True, mqtt_auth=True)
    try:
        services.mosquitto.start()
        services.write_env()
        settings = load_settings(run_dir=tmp_path)
        assert settings.mqtt_tls and settings.mqtt_ca_file is not None
        assert settings.mqtt_port == services.mosquitto.tls_port
        check = subprocess.run(
            ["openssl", "verify", "-CAfile", str(settings.mqtt_ca_file),
             str(services.mosquitto.tls_dir / "server.pem")],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stderr
        port = services.mosquitto.port or 0
        secure = Client(
            port,
            settings.mqtt_username,
            settings.mqtt_password,
            tls=ssl.create_default_context(cafile=str(settings.mqtt_ca_file)),
            tls_port=settings.mqtt_port,
        )
        assert secure.accepted()
        secure.subscribe("eldercare/#")
        secure.publish("eldercare/x/y/z", b"over tls")
        assert secure.received.get(timeout=10) == ("eldercare/x/y/z", b"over tls")
        secure.close()
        # A client that does not trust the local CA cannot complete the handshake.
        with pytest.raises(ssl.SSLError):
            Client(port, None, None, tls=ssl.create_default_context(), tls_port=settings.mqtt_port)
    finally:
        services.mosquitto.stop()


REGISTRY_YAML = """
sites:
  - id: home-a
    kind: home
    name: A
    organisation: city/district
    devices:
      - {id: a-sos, kind: sos_button}
  - id: home-b
    kind: home
    name: B
    organisation: city/district
"""


def test_cli_credentials_and_registry_apply_keep_the_broker_in_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from eldercare_app.cli import _register_subcommands, app

    _register_subcommands()
    mosquitto = Mosquitto(tmp_path / "run", auth=True)
    mosquitto.start()
    try:
        monkeypatch.setenv("ELDERCARE_RUN_DIR", str(tmp_path / "run"))
        monkeypatch.setenv("ELDERCARE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/r.db")
        registry = tmp_path / "registry.yaml"
        registry.write_text(REGISTRY_YAML)
        runner = CliRunner()
        applied = runner.invoke(app, ["registry", "apply", str(registry)])
        assert applied.exit_code == 0, applied.output
        assert "local MQTT broker ACL updated" in applied.output
        assert "user home-b" in mosquitto.broker_files.acl_file.read_text()

        made = runner.invoke(app, ["mqtt", "credentials", "--site", "home-a"])
        assert made.exit_code == 0, made.output
        (line,) = [ln for ln in made.output.splitlines() if ln.startswith("created")]
        _, user, password = line.split()
        assert user == "home-a"
        for _ in range(50):  # the broker rereads its files on SIGHUP, asynchronously
            client = Client(mosquitto.port or 0, user, password)
            accepted = client.accepted()
            client.close()
            if accepted:
                break
        assert accepted
        again = runner.invoke(app, ["mqtt", "credentials", "--site", "home-a"])
        assert "no new accounts" in again.output and password not in again.output
        unknown = runner.invoke(app, ["mqtt", "credentials", "--site", "nowhere"])
        assert unknown.exit_code == 1
        shown = runner.invoke(app, ["mqtt", "acl", "--reload", "--print"])
        assert shown.exit_code == 0 and "topic readwrite eldercare/home-a/#" in shown.output
        assert "local broker reloaded" in shown.output
    finally:
        mosquitto.stop()


def test_cli_maintains_a_deployments_files(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from eldercare_app.cli import _register_subcommands, app

    _register_subcommands()
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY_YAML)
    deploy = tmp_path / "deploy"
    args = ["mqtt", "credentials", "--registry", str(registry), "--platform-user", "eldercare",
            "--password-file", str(deploy / "passwd"), "--acl-file", str(deploy / "acl"),
            "--platform-secret", str(deploy / "platform")]  # fmt: skip
    made = CliRunner().invoke(app, args, env={"ELDERCARE_RUN_DIR": str(tmp_path / "run")})
    assert made.exit_code == 0, made.output
    users = {line.split()[1] for line in made.output.splitlines() if line.startswith("created")}
    assert users == {"eldercare", "home-a", "home-b"}
    assert set(read_password_file(deploy / "passwd")) == users
    assert "user eldercare\ntopic readwrite #" in (deploy / "acl").read_text()
    assert not (tmp_path / "run" / "services").exists()  # the local broker's files untouched
