"""The broker grants each site exactly its own topics: a zigbee2mqtt friendly name is
granted with the suffixes zigbee2mqtt uses, not as a prefix covering another home's
device, and the registry refuses base topics that would overlap the native root or
another site's (naming the file, the key and the reason). Against a real Mosquitto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eldercare.registry_apply import RegistryError, load_registry_file, validate_registry
from eldercare.registry_model import RegistryDocument
from eldercare_app.local_services import Mosquitto
from eldercare_app.mqtt_accounts import PLATFORM_USER, acl_text, issue_credentials
from tests.helpers.mqtt import Client


def _site(site_id: str, base: str, name: str) -> dict[str, object]:
    return {
        "id": site_id,
        "kind": "home",
        "name": site_id,
        "organisation": "city/district",
        "rooms": [{"id": "bedroom", "kind": "bedroom"}],
        "devices": [
            {
                "id": f"{site_id}-sos",
                "kind": "sos_button",
                "room": "bedroom",
                "vendor": {"z2m": {"base_topic": base, "friendly_name": name}},
            }
        ],
    }


def _two_homes() -> RegistryDocument:
    # Site C's button is "401"; site D's is "401/sos", under the same base topic.
    return validate_registry(
        {
            "sites": [
                _site("home-c", "zigbee2mqtt", "401"),
                _site("home-d", "zigbee2mqtt", "401/sos"),
            ]
        }
    )


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, dict[str, str]]]:
    mosquitto = Mosquitto(tmp_path, auth=True)
    secrets = {s.user: s.password for s in issue_credentials(mosquitto.broker_files, _two_homes())}
    mosquitto.start()
    yield mosquitto, secrets
    mosquitto.stop()


@pytest.mark.integration
def test_a_friendly_name_does_not_cover_another_homes_device(
    broker: tuple[Mosquitto, dict[str, str]],
) -> None:
    mosquitto, secrets = broker
    port = mosquitto.port or 0
    platform = Client(port, PLATFORM_USER, secrets[PLATFORM_USER])
    assert platform.accepted()
    for topic in ("zigbee2mqtt/#", "marker"):
        platform.subscribe(topic)
    site_c = Client(port, "home-c", secrets["home-c"])
    assert site_c.accepted()
    allowed = [
        "zigbee2mqtt/401",
        "zigbee2mqtt/401/availability",
        "zigbee2mqtt/401/set",
        "zigbee2mqtt/401/set/state",
        "zigbee2mqtt/401/get/battery",
    ]
    refused = [
        "zigbee2mqtt/401/sos",  # home D's SOS button
        "zigbee2mqtt/401/sos/availability",
        "zigbee2mqtt/401/set/state/deeper",
        "zigbee2mqtt/bridge/state",
    ]
    for topic in refused + allowed:
        site_c.publish(topic, b'{"action": "emergency"}')
    platform.publish("marker", b"end")
    assert [t for t, _ in platform.drain("marker", b"end")] == allowed
    # D's own credentials still reach D's button.
    site_d = Client(port, "home-d", secrets["home-d"])
    assert site_d.accepted()
    site_d.publish("zigbee2mqtt/401/sos", b'{"action": "emergency"}')
    platform.publish("marker", b"end")
    assert [t for t, _ in platform.drain("marker", b"end")] == ["zigbee2mqtt/401/sos"]
    for client in (site_c, site_d, platform):
        client.close()


def test_acl_lists_each_friendly_name_exactly() -> None:
    text = acl_text(_two_homes()).text
    site_c = text.split("user home-c\n")[1].split("\n\n")[0].splitlines()
    assert "topic readwrite zigbee2mqtt/401" in site_c
    assert not any(line.endswith("/#") and "zigbee2mqtt" in line for line in site_c)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    return path


def _home_yaml(site_id: str, base: str, name: str) -> str:
    return (
        f"  - id: {site_id}\n    kind: home\n    name: {site_id}\n    organisation: city\n"
        f"    devices:\n      - id: {site_id}-sos\n        kind: sos_button\n"
        f"        vendor: {{z2m: {{base_topic: '{base}', friendly_name: '{name}'}}}}\n"
    )


@pytest.mark.parametrize(
    ("sites", "key", "reason"),
    [
        (
            [("home-c", "eldercare", "door")],
            "sites[home-c].devices[home-c-sos].vendor.z2m.base_topic",
            "overlaps the reserved topic root 'eldercare/'",
        ),
        (
            [("home-c", "eldercare/home-d", "door")],
            "sites[home-c].devices[home-c-sos].vendor.z2m.base_topic",
            "overlaps the reserved topic root 'eldercare/'",
        ),
        (
            [("home-c", "zigbee2mqtt", "door"), ("home-d", "zigbee2mqtt/home-d", "door")],
            "sites[home-d].devices[home-d-sos].vendor.z2m.base_topic",
            "overlaps base topic 'zigbee2mqtt' of site 'home-c'",
        ),
        (
            [("home-c", "zigbee2mqtt", "401/set")],
            "sites[home-c].devices[home-c-sos].vendor.z2m.friendly_name",
            "uses a segment zigbee2mqtt reserves",
        ),
    ],
)
def test_registry_refuses_overlapping_base_topics(
    tmp_path: Path, sites: list[tuple[str, str, str]], key: str, reason: str
) -> None:
    path = _write(tmp_path, "sites:\n" + "".join(_home_yaml(*s) for s in sites))
    with pytest.raises(RegistryError) as err:
        load_registry_file(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert key in message and reason in message, message
