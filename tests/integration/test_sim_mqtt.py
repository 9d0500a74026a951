"""The simulator against the real Mosquitto of the test session."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from device_sim.accounts import wait_site_passwords
from device_sim.cli import app as sim_app
from device_sim.clock import Pacer
from device_sim.device import Impairments
from device_sim.encoding import Message
from device_sim.publisher import BrokerConfig, MqttPublisher, PublishError
from device_sim.runner import MAX_SKEW_S, run
from device_sim.scenarios import parse_specs
from device_sim.simulation import SimConfig, Simulation
from eldercare.registry_model import RegistryDocument
from eldercare_app.local_services import Mosquitto
from eldercare_app.mqtt_accounts import PLATFORM_USER, issue_credentials
from ingest.codecs import decode, native_schema
from ingest.decoded import Decoded
from tests.helpers.mqtt import clear_retained

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 9, 6, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
Received = dict[str, list[bytes]]


@pytest.fixture(autouse=True, scope="module")
def _no_retained_left(
    mqtt_addr: tuple[str, int], mqtt_credentials: tuple[str, str]
) -> Iterator[None]:
    """The simulated devices retain their availability and state: cleared at the end, so
    tests that later count every site's messages on the session broker do not see them."""
    yield
    assert clear_retained(mqtt_addr[1], *mqtt_credentials) > 0  # they were there
    assert clear_retained(mqtt_addr[1], *mqtt_credentials) == 0  # and are gone


@pytest.fixture(autouse=True)
def _platform_login(mqtt_credentials: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The session broker refuses anonymous clients: every client here (and the CLI, through
    its settings) logs in with the platform's account."""
    monkeypatch.setenv("ELDERCARE_MQTT_USERNAME", mqtt_credentials[0])
    monkeypatch.setenv("ELDERCARE_MQTT_PASSWORD", mqtt_credentials[1])


def _login() -> tuple[str, str]:
    return os.environ["ELDERCARE_MQTT_USERNAME"], os.environ["ELDERCARE_MQTT_PASSWORD"]


@contextmanager
def subscriber(
    addr: tuple[str, int],
    topics: list[str],
    order: list[float] | None = None,
    login: tuple[str, str] | None = None,
) -> Iterator[tuple[Received, list[int]]]:
    """Collects live (not retained) messages per topic, in arrival order; with `order`,
    also the `ts` of every native JSON payload in global arrival order."""
    got: Received = defaultdict(list)
    count = [0]
    ready = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{time.monotonic_ns()}")

    def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
        c.subscribe([(t, 1) for t in topics])

    def on_subscribe(*_: object) -> None:
        ready.set()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        if not msg.retain:
            got[msg.topic].append(bytes(msg.payload))
            count[0] += 1
            if order is not None and msg.payload.startswith(b"{"):
                order.append(json.loads(msg.payload)["ts"])

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.username_pw_set(*(login or _login()))
    client.connect(*addr)
    client.loop_start()
    assert ready.wait(30)
    try:
        yield got, count
    finally:
        client.disconnect()
        client.loop_stop()


def _wait_for(count: list[int], expected: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while count[0] < expected and time.monotonic() < deadline:
        time.sleep(0.05)


def _config(seed: int, fmt: str = "mixed") -> SimConfig:
    return SimConfig(
        homes=3,
        days=0.3,
        seed=seed,
        start=START,
        fmt=fmt,
        scenarios=tuple(parse_specs("sos,low_battery")),
        wearable_share=1.0,
        lead_s=1800.0,
    )


def _publish(addr: tuple[str, int], cfg: SimConfig, prefix: str) -> tuple[Received, Simulation]:
    sim = Simulation(cfg)
    expected = sum(1 for m in sim.messages() if m.message is not None)
    sim = Simulation(cfg)
    with subscriber(addr, ["eldercare/#", "zigbee2mqtt/#"]) as (got, count):
        publisher = MqttPublisher(BrokerConfig(*addr, *_login(), client_prefix=prefix))
        stats = run(sim, publisher, Pacer(0, sim.start))
        publisher.close()
        assert stats.messages == expected
        _wait_for(count, expected)
        assert count[0] == expected
    return dict(got), sim


def test_seeded_runs_publish_the_same_messages(mqtt_addr: tuple[str, int]) -> None:
    first, sim = _publish(mqtt_addr, _config(5), "sim-a")
    second, _ = _publish(mqtt_addr, _config(5), "sim-b")
    assert first == second
    generated: Received = defaultdict(list)
    for item in Simulation(_config(5)).messages():
        if item.message is not None:
            generated[item.message.topic].append(item.message.payload)
    assert first == dict(generated)
    assert sum(map(len, first.values())) > 1000
    other = [m.message for m in Simulation(_config(6)).messages() if m.message is not None]
    assert sorted(m.payload for m in other) != sorted(p for ps in first.values() for p in ps)

    # The ground truth is in what the broker delivered.
    for record in sim.truth:
        site = next(s for s in sim.sites if s.id == record.site)
        device = site.device(record.device or "")
        readings = []
        for topic, payloads in first.items():
            for payload in payloads:
                result = decode(topic, payload, record.start + 1)
                if isinstance(result, Decoded) and (
                    getattr(result.identity, "device_id", None) == device.id
                    or getattr(result.identity, "key", (None,))[-1] == device.z2m_name
                ):
                    readings += [r for r in result.readings if abs(r.ts - record.start) < 0.002]
        if record.scenario == "sos":
            assert any(r.stream == "sos" and r.fields == {"pressed": True} for r in readings)
        else:
            low = [r for r in readings if r.stream == "battery"]
            assert low and float(low[0].fields["percent"]) < 15  # type: ignore[arg-type]


def test_sites_stay_in_step_at_the_broker(mqtt_addr: tuple[str, int]) -> None:
    """The platform's event clock tolerates 120 s of lateness across sites: whatever one
    connection gathers (a burst of accelerometer batches), no site falls behind."""
    cfg = replace(
        _config(8, "native"),
        homes=6,
        scenarios=tuple(parse_specs("wearable_fall,sos")),
        impairments=Impairments.none(),
    )
    arrival: list[float] = []
    with subscriber(mqtt_addr, ["eldercare/#"], order=arrival) as (_, count):
        sim = Simulation(cfg)
        publisher = MqttPublisher(BrokerConfig(*mqtt_addr, *_login()))
        stats = run(sim, publisher, Pacer(0, sim.start))
        publisher.close()
        _wait_for(count, stats.messages)
    assert len(arrival) == stats.messages
    newest = arrival[0]
    worst = 0.0
    for ts in arrival:
        newest = max(newest, ts)
        worst = max(worst, newest - ts)
    assert worst <= MAX_SKEW_S < 120  # the platform's event-clock lateness


def test_qos0_runs_to_the_end(mqtt_addr: tuple[str, int]) -> None:
    """QoS 0 has no acknowledgements to wait for: the windows must not wait for any."""
    cfg = replace(_config(9, "native"), homes=2, days=0.2)
    with subscriber(mqtt_addr, ["eldercare/#"]) as (_, count):
        sim = Simulation(cfg)
        publisher = MqttPublisher(BrokerConfig(*mqtt_addr, *_login()), qos=0)
        stats = run(sim, publisher, Pacer(0, sim.start))
        publisher.close()
        _wait_for(count, stats.messages, 20)
    assert stats.messages > 300
    assert count[0] == stats.messages


def test_payload_shapes() -> None:
    """Native payloads satisfy the published JSON Schemas; z2m ones look like z2m's."""
    validators: dict[str, jsonschema.Draft202012Validator] = {}
    z2m_keys: set[str] = set()
    streams: set[str] = set()
    live = replace(_config(7, "z2m"), live=True)
    both = [
        *Simulation(_config(7, "native")).messages(),
        *Simulation(_config(7, "z2m")).messages(),
        *Simulation(live).messages(),
    ]
    z2m_availability = 0
    for item in both:
        m = item.message
        if m is None:
            continue
        if m.topic.startswith("eldercare/"):
            stream = m.topic.rsplit("/", 1)[1]
            streams.add(stream)
            if stream == "availability":
                assert m.retain
                if not m.payload.startswith(b"{"):  # live: the plain strings devices send
                    assert m.payload in (b"online", b"offline")
                    continue
            doc = json.loads(m.payload)
            assert isinstance(doc["ts"], float | int)
            if stream not in validators:
                validators[stream] = jsonschema.Draft202012Validator(native_schema(stream))
            validators[stream].validate(doc)
        else:
            assert m.topic.startswith("zigbee2mqtt/")
            if m.topic.endswith("/availability"):
                assert json.loads(m.payload) == {"state": "online"} and m.retain
                z2m_availability += 1
                continue
            doc = json.loads(m.payload)
            z2m_keys |= doc.keys()
            assert doc["last_seen"].endswith("Z") and len(doc["last_seen"]) == 24
            assert isinstance(doc["linkquality"], int)
            if "contact" in doc:
                assert isinstance(doc["contact"], bool)
            if "action" in doc:
                assert doc["action"] == "emergency"
    assert {"motion", "contact", "occupancy", "presence", "fall", "heartbeat", "battery",
            "link", "accel"} <= streams  # fmt: skip
    # z2m availability has no time of its own: sent live only (3 homes x 14 z2m devices:
    # 10 for activity and safety, 4 hazard detectors).
    assert z2m_availability == 42
    assert {"occupancy", "contact", "presence", "fall_down_status", "battery", "linkquality",
            "last_seen", "tamper", "smoke", "gas", "water_leak", "temperature",
            "battery_low"} <= z2m_keys  # fmt: skip


def test_a_cut_connection_leaves_the_last_will(mqtt_addr: tuple[str, int]) -> None:
    topic = "eldercare/sim-will-test/sim-will-test-gw/availability"
    publisher = MqttPublisher(BrokerConfig(*mqtt_addr, *_login(), client_prefix="sim-will"))
    with subscriber(mqtt_addr, [topic]) as (got, count):
        publisher.connect("sim-will-test", Message(topic, b"offline", True))
        publisher.publish("sim-will-test", Message(topic, b"online", True))
        publisher.pump(0.1)
        _wait_for(count, 1, 10)
        publisher.cut("sim-will-test")
        _wait_for(count, 2, 10)
        assert got[topic] == [b"online", b"offline"]
    publisher.close()


def test_clean_close_leaves_no_will(mqtt_addr: tuple[str, int]) -> None:
    topic = "eldercare/sim-bye-test/sim-bye-test-gw/availability"
    publisher = MqttPublisher(BrokerConfig(*mqtt_addr, *_login(), client_prefix="sim-bye"))
    with subscriber(mqtt_addr, [topic]) as (got, count):
        publisher.connect("sim-bye-test", Message(topic, b"offline", True))
        publisher.publish("sim-bye-test", Message(topic, b"online", True))
        publisher.close()
        _wait_for(count, 2, 2)  # a Will would arrive within this
        assert got[topic] == [b"online"]


def test_cli_writes_registry_and_truth_then_publishes(
    mqtt_addr: tuple[str, int], tmp_path: Path
) -> None:
    registry, truth = tmp_path / "registry.yaml", tmp_path / "truth.jsonl"
    args = ["--homes", "2", "--institutions", "1", "--days", "0.4", "--fast", "--seed", "3",
            "--scenarios", "sos,device_offline", "--truth", str(truth), "--registry-out",
            str(registry), "--start", "2026-11-09T09:00:00+08:00", "--format", "z2m",
            "--mqtt-host", mqtt_addr[0], "--mqtt-port", str(mqtt_addr[1])]  # fmt: skip
    env = {"ELDERCARE_RUN_DIR": str(tmp_path / "run")}
    with subscriber(mqtt_addr, ["zigbee2mqtt/#", "eldercare/#"]) as (_, count):
        result = CliRunner().invoke(sim_app, args, env=env)
        assert result.exit_code == 0, result.output
        _wait_for(count, 100, 10)
        assert count[0] >= 100
    assert "published" in result.output and "msg/s" in result.output
    doc = RegistryDocument.model_validate(yaml.safe_load(registry.read_text(encoding="utf-8")))
    assert len(doc.sites) == 3
    lines = truth.read_text().splitlines()
    assert sorted(json.loads(line)["kind"] for line in lines) == ["device_offline", "sos"]


def test_cli_refuses_unknown_scenarios(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        sim_app, ["--scenarios", "fall,sos", "--registry-only", "--truth", str(tmp_path / "t")]
    )
    assert result.exit_code == 2
    assert "unknown scenario 'fall'" in result.output


def test_pacer() -> None:
    now = [100.0]
    pacer = Pacer(60.0, event_origin=1_000.0, monotonic=lambda: now[0])
    assert pacer.wait_s(1_000.0) == 0.0
    assert pacer.wait_s(1_600.0) == 10.0  # ten simulated minutes at x60
    now[0] = 105.0
    assert pacer.wait_s(1_600.0) == 5.0
    fast = Pacer(0, event_origin=0.0, monotonic=lambda: now[0])
    assert fast.unpaced and fast.wait_s(1e9) == 0.0
    assert Pacer(1, 0.0).real_time
    with pytest.raises(ValueError):
        Pacer(-1, 0.0)


def test_each_site_logs_in_with_its_own_account(tmp_path: Path) -> None:
    """On a broker that enforces site accounts (as `eldercare run` sets the local one up),
    every site publishes with its own account, and its ACL admits everything the site
    sends, native and zigbee2mqtt; a wrong password is refused, not ignored."""
    sim = Simulation(replace(_config(12, "mixed"), days=0.15, scenarios=()))
    mosquitto = Mosquitto(tmp_path / "broker", auth=True)
    issued = {s.user: s.password for s in issue_credentials(mosquitto.broker_files, sim.registry())}
    folder = tmp_path / "issued"
    folder.mkdir()
    for site in sim.sites:
        (folder / site.id).write_text(issued[site.id] + "\n")
    mosquitto.start()
    try:
        addr = (mosquitto.host, mosquitto.port or 0)
        passwords = wait_site_passwords(folder, [s.id for s in sim.sites], 0.0)
        assert passwords == {s.id: issued[s.id] for s in sim.sites}
        login = (PLATFORM_USER, issued[PLATFORM_USER])
        with subscriber(addr, ["eldercare/#", "zigbee2mqtt/#"], login=login) as (_, count):
            # No platform account for the simulator: only the site accounts can publish.
            broker = BrokerConfig(*addr, site_passwords=passwords)
            publisher = MqttPublisher(broker)
            stats = run(sim, publisher, Pacer(0, sim.start))
            publisher.close()
            _wait_for(count, stats.messages, 30)
        assert stats.messages > 100 and count[0] == stats.messages
        site_id = sim.sites[0].id
        wrong = MqttPublisher(BrokerConfig(*addr, site_passwords={site_id: "wrong"}))
        with pytest.raises(PublishError, match=r"bad user name or password|not authorised"):
            wrong.connect(
                site_id, Message(f"eldercare/{site_id}/gw/availability", b"offline", True)
            )
        wrong.close()
    finally:
        mosquitto.stop()
