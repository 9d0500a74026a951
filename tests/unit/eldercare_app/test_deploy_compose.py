"""The production deployment, validated without Docker: the compose file and the files
it refers to, the environment it needs, and the broker configuration — the last one
run for real with the machine's Mosquitto 2 and the deployment's own password script."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from dashboards.build import write_build
from eldercare.registry_model import RegistryDocument
from eldercare.settings import Settings
from eldercare_app.mqtt_accounts import acl_text
from eldercare_app.mqtt_cli import app as mqtt_app

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
ROOT = DEPLOY.parent
COMPOSE = DEPLOY / "docker-compose.yml"
ONE_SHOT = {"mosquitto-passwords", "dashboards"}
# ${VAR}, ${VAR:-default}, ${VAR:?message}, nested; `$$` is a literal dollar for the container.
_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def _env_example() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"not KEY=VALUE: {line!r}"
            out[key.strip()] = value
    return out


def _service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _substitute(text: str, values: dict[str, str]) -> str:
    """Compose's interpolation for the forms the file uses (innermost first)."""
    pattern = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^{}]*))?\}")
    while True:
        new = pattern.sub(
            lambda m: values.get(m.group(1)) or (m.group(3) if m.group(2) == ":-" else ""), text
        )
        if new == text:
            return new.replace("$$", "$")
        text = new


def test_the_services_are_there_with_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"mosquitto", "influxdb", "grafana", "platform"} <= set(services)
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc["restart"] == "no", name
            continue
        check = svc.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        assert svc.get("restart") == "unless-stopped", name
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    assert services["influxdb"]["image"].startswith("influxdb:2")
    assert services["platform"]["command"] == ["run"]


def test_dependencies_and_volumes_resolve(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, (name, dep)
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], (name, dep)
            if cond["condition"] == "service_completed_successfully":
                assert dep in ONE_SHOT
        for mount in svc.get("volumes") or []:
            source = mount.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} not declared"
    build = services["platform"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()


def test_every_variable_is_documented_and_every_documented_one_used(
    compose: dict[str, Any],
) -> None:
    used = set(_VAR.findall(COMPOSE.read_text()))
    documented = _env_example()
    assert used - set(documented) == set(), "used in compose, missing from .env.example"
    assert set(documented) - used == set(), "documented but never used"
    text = (DEPLOY / ".env.example").read_text()
    for name in documented:
        # Each variable has a comment (the line above it, or its block's heading).
        block = text[: text.index(f"\n{name}=")]
        assert block.rstrip().splitlines()[-1].startswith("#") or "=" in block.splitlines()[-1]


def test_required_secrets_fail_loudly_when_missing(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    for secret in (
        "MQTT_PLATFORM_PASSWORD", "INFLUXDB_ADMIN_PASSWORD",
        "INFLUXDB_ADMIN_TOKEN", "GRAFANA_ADMIN_PASSWORD", "GRAFANA_INFLUX_TOKEN",
    ):  # fmt: skip
        assert re.search(r"\$\{" + secret + r":\?", text), secret
        assert _env_example()[secret] == "", f"{secret} must not ship a default"


def test_platform_environment_is_valid_settings(compose: dict[str, Any]) -> None:
    values = {k: v or "secret" for k, v in _env_example().items()}
    env = {
        k: _substitute(v, values) for k, v in _service_env(compose["services"]["platform"]).items()
    }
    unknown = {k for k in env if k.removeprefix("ELDERCARE_").lower() not in Settings.model_fields}
    assert not unknown, f"not platform settings: {unknown}"
    # The environment's strings, parsed by Settings as from ELDERCARE_* variables.
    fields: dict[str, Any] = {k.removeprefix("ELDERCARE_").lower(): v for k, v in env.items()}
    settings = Settings(**fields)
    assert settings.mqtt_host == "mosquitto" and settings.mqtt_username == "eldercare"
    assert settings.influx_url == "http://influxdb:8086" and settings.influx_db == "eldercare"
    assert settings.influx_token == "secret"  # the admin token when no platform token is set
    assert settings.http_host == "0.0.0.0"


def test_grafana_gets_what_the_provisioning_files_read(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    services = compose["services"]
    grafana_env = _service_env(services["grafana"])
    command = " ".join(services["dashboards"]["command"])
    out = re.search(r"--out (\S+)", command)
    path = re.search(r"--dashboards-path (\S+)", command)
    assert out and path
    assert grafana_env["GF_PATHS_PROVISIONING"] == f"{out.group(1)}/provisioning"
    assert "grafana-build:/grafana-build:ro" in services["grafana"]["volumes"]
    built = write_build(tmp_path, dashboards_path=path.group(1))
    for file in (built.datasources, built.providers):
        for var in _VAR.findall(file.read_text()):
            assert var in grafana_env, f"{file.name} reads ${var}; Grafana's environment lacks it"
    provider = yaml.safe_load(built.providers.read_text())["providers"][0]
    assert provider["options"]["path"] == f"{out.group(1)}/dashboards"
    assert grafana_env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_influxdb_init_maps_the_v1_database(compose: dict[str, Any]) -> None:
    influx = compose["services"]["influxdb"]
    mount = next(v for v in influx["volumes"] if v.endswith(":/docker-entrypoint-initdb.d:ro"))
    scripts = list((DEPLOY / mount.split(":")[0]).glob("*.sh"))
    assert scripts
    env = _service_env(influx)
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    for script in scripts:
        text = script.read_text()
        assert os.access(script, os.X_OK)
        subprocess.run(["bash", "-n", str(script)], check=True)
        assert "influx v1 dbrp create" in text and "--rp autogen" in text
        for var in re.findall(r"\$\{([A-Z_]+)", text):
            assert var in env, f"{script.name} reads {var}, not in influxdb's environment"


def test_dockerfile_copies_every_package_and_the_ignore_file_lets_them_through() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (\S+)", dockerfile, re.M)
    packages = re.search(r"packages = \[([^\]]*)\]", (ROOT / "pyproject.toml").read_text())
    assert packages
    for pkg in re.findall(r'"(\w+)"', packages.group(1)):
        assert pkg in copied, f"{pkg} not copied into the image"
    for src in copied:
        if not src.startswith("--"):
            assert (ROOT / src).exists(), src
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for src in copied:
        if not src.startswith("--"):
            assert f"!{src}" in ignore or f"!{src}/**" in ignore, src
    assert 'ENTRYPOINT ["eldercare"]' in dockerfile and "HEALTHCHECK" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, re.M)


# --- the broker, for real ----------------------------------------------------------------

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _conf() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.setdefault(key, value.strip())
    return out


def test_mosquitto_config_refuses_anonymous_and_uses_password_and_acl_files(
    compose: dict[str, Any],
) -> None:
    conf = _conf()
    assert conf["allow_anonymous"] == "false"
    assert conf["persistence"] == "true"
    mounts = compose["services"]["mosquitto"]["volumes"]
    targets = {m.split(":")[1] for m in mounts}
    for key in ("password_file", "acl_file", "persistence_location"):
        assert any(conf[key].startswith(t) for t in targets), f"{key} {conf[key]} not mounted"
    script = compose["services"]["mosquitto-passwords"]["command"][-1]
    assert script.endswith("make-passwords.sh")
    # Password file and ACL share one volume: written by the bootstrap job and by
    # `eldercare mqtt credentials` in the platform's image, only read by the broker.
    auth = {"mosquitto-auth:/mosquitto/auth:ro"}
    assert auth <= set(mounts)
    assert conf["password_file"] == "/mosquitto/auth/passwd"
    assert conf["acl_file"] == "/mosquitto/auth/acl"
    for writer in ("mosquitto-passwords", "platform"):
        assert "mosquitto-auth:/mosquitto/auth" in compose["services"][writer]["volumes"]
    assert not (DEPLOY / "mosquitto" / "acl").exists(), "no static ACL: generated per site"


SITES = {
    "sites": [
        {"id": "s1", "kind": "home", "name": "one", "organisation": "city",
         "devices": [{"id": "d1", "kind": "motion"},
                     {"id": "plug1", "kind": "plug", "vendor": {"tasmota": {"topic": "plug1"}}}]},
        {"id": "s2", "kind": "home", "name": "two", "organisation": "city",
         "devices": [{"id": "d2", "kind": "motion"}]},
    ]
}  # fmt: skip
SITE_PASSWORDS: dict[str, str] = {}  # filled by the `broker` fixture


def _bootstrap(auth: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The deployment's `mosquitto-passwords` job on a folder standing for its volume."""
    return subprocess.run(
        ["sh", str(DEPLOY / "mosquitto" / "make-passwords.sh"), *args],
        env={**os.environ, "MQTT_PLATFORM_PASSWORD": "platform-pw",
             "MOSQUITTO_AUTH_DIR": str(auth), **env},
        check=True, capture_output=True, text=True,
    )  # fmt: skip


def test_bootstrap_never_overwrites_existing_files_unless_forced(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    first = _bootstrap(auth)
    assert "password file written" in first.stdout and "ACL written" in first.stdout
    assert (auth / "passwd").read_text().startswith("eldercare:$7$")
    assert (auth / "acl").read_text() == acl_text(RegistryDocument(), "eldercare").text
    generated = {"passwd": "eldercare:$7$kept\ns1:$7$site\n", "acl": "user s1\n"}
    for name, text in generated.items():
        (auth / name).write_text(text)
        (auth / name).chmod(0o644)
    again = _bootstrap(auth)
    assert "left as it is" in again.stderr
    for name, text in generated.items():
        assert (auth / name).read_text() == text
        assert (auth / name).stat().st_mode & 0o777 == 0o600  # only owner and mode set
    for forced in (_bootstrap(auth, "--force"), _bootstrap(auth, MOSQUITTO_PASSWORDS_FORCE="1")):
        assert "password file written" in forced.stdout
        assert "s1:" not in (auth / "passwd").read_text()
        assert (auth / "acl").read_text() == acl_text(RegistryDocument(), "eldercare").text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker() -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    if not Path(MOSQUITTO).exists():
        pytest.fail("mosquitto is needed (apt-get install mosquitto; `make setup` does it)")
    # Not under pytest's tmp_path: run as root, the broker drops to its own user, which
    # must reach the files (pytest's base directory is private to root).
    base = Path(tempfile.mkdtemp(prefix="eldercare-deploy-mq-"))
    base.chmod(0o755)
    data = base / "data"
    data.mkdir()
    auth = base / "auth"
    passwd = auth / "passwd"
    _bootstrap(auth)
    assert "platform-pw" not in passwd.read_text()  # hashed
    # The sites' own accounts, as OPERATIONS.md has them made, then the bootstrap job
    # again: it keeps the files and gives them to the broker's user.
    registry = base / "registry.yaml"
    registry.write_text(yaml.safe_dump(SITES))
    done = CliRunner().invoke(
        mqtt_app,
        ["credentials", "--registry", str(registry), "--password-file", str(passwd),
         "--acl-file", str(auth / "acl"), "--platform-user", "eldercare"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    created = [line.split() for line in done.output.splitlines() if line.startswith("created")]
    SITE_PASSWORDS.clear()
    SITE_PASSWORDS.update({user: password for _, user, password in created})
    assert set(SITE_PASSWORDS) == {"s1", "s2"}  # the platform's account was kept
    _bootstrap(auth)
    port = _free_port()
    text = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    text = text.replace("/mosquitto/data/", f"{data}/")
    text = text.replace("/mosquitto/auth/", f"{auth}/")
    text = text.replace("listener 1883", f"listener {port} 127.0.0.1")
    conf = base / "mosquitto.conf"
    conf.write_text(text)
    if os.geteuid() == 0:  # the broker drops to its own user and must write its data
        shutil.chown(data, "mosquitto", "mosquitto")
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "broker did not start"
            time.sleep(0.05)
        yield port, data, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


class _Client:
    def __init__(self, port: int, user: str | None, password: str | None) -> None:
        self.connected = threading.Event()
        self.reason: Any = None
        self.messages: list[str] = []
        self.got = threading.Event()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}-{time.time_ns()}")
        if user:
            self.c.username_pw_set(user, password)
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.subacks: set[int] = set()
        self.subacked = threading.Condition()
        self.c.on_subscribe = self._on_subscribe
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_connect(self, c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        self.reason = reason
        self.connected.set()

    def _on_message(self, c: Any, u: Any, msg: Any) -> None:
        self.messages.append(msg.topic)
        self.got.set()

    def _on_subscribe(self, c: Any, u: Any, mid: int, codes: Any, props: Any) -> None:
        with self.subacked:
            self.subacks.add(mid)
            self.subacked.notify_all()

    def subscribe(self, topic: str) -> None:
        _, mid = self.c.subscribe(topic, qos=1)
        with self.subacked:
            assert self.subacked.wait_for(lambda: mid in self.subacks, timeout=5), topic

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _connect(port: int, user: str | None, password: str | None) -> _Client:
    client = _Client(port, user, password)
    assert client.connected.wait(10)
    return client


@pytest.mark.integration  # a real Mosquitto with the deployment's configuration
def test_broker_refuses_strangers_enforces_the_acl_and_persists(
    broker: tuple[int, Path, subprocess.Popen[bytes]],
) -> None:
    port, data, proc = broker
    s1_pw = SITE_PASSWORDS["s1"]
    for user, password in ((None, None), ("s1", "wrong"), ("nobody", s1_pw), ("device", s1_pw)):
        stranger = _connect(port, user, password)
        assert stranger.reason.is_failure, (user, stranger.reason)
        stranger.close()
    platform = _connect(port, "eldercare", "platform-pw")
    s1 = _connect(port, "s1", s1_pw)
    s2 = _connect(port, "s2", SITE_PASSWORDS["s2"])
    try:
        assert not platform.reason.is_failure and not s1.reason.is_failure
        platform.subscribe("eldercare/#")
        s2.subscribe("eldercare/#")  # granted, but the ACL lets only its own site through
        s1.subscribe("cmnd/#")
        # A site cannot publish into another site's topics: dropped, while its own
        # reading (sent after it on the same connection) arrives.
        s1.c.publish("eldercare/s2/d2/motion", b'{"motion": true}', qos=1).wait_for_publish(5)
        s1.c.publish("eldercare/s1/d1/motion", b'{"motion": true}', qos=1).wait_for_publish(5)
        assert platform.got.wait(5)
        # The platform's command reaches s1's plug; by then s2 would have had s1's reading.
        platform.c.publish("cmnd/plug1/power", b"off", qos=1).wait_for_publish(5)
        assert s1.got.wait(5)
        assert s1.messages == ["cmnd/plug1/power"]
        assert platform.messages == ["eldercare/s1/d1/motion"]
        assert s2.messages == []
    finally:
        platform.close()
        s1.close()
        s2.close()
    proc.terminate()
    assert proc.wait(timeout=10) == 0
    assert (data / "mosquitto.db").is_file()  # sessions and queued messages kept on disk
