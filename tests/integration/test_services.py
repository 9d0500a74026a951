"""The local services start, answer, are reused when up, and print sourceable env lines."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

from eldercare.settings import load_settings, read_env_file
from eldercare_app.local_services import LocalServices, port_is_free


def test_services_up_is_idempotent_and_avoids_taken_ports(tmp_path: Path) -> None:
    # Hold the standard broker port if it is free, so the service must pick another.
    blocker = socket.socket()
    if port_is_free(1883):
        blocker.bind(("127.0.0.1", 1883))
        blocker.listen()
    services = LocalServices(tmp_path)
    try:
        first = services.up()
        assert all(s.healthy for s in first)
        assert services.mosquitto.port != 1883
        pids = [s.pid for s in first]
        again = services.up()
        assert [s.pid for s in again] == pids, "a healthy service is reused, not restarted"
        with urllib.request.urlopen(f"{services.influxdb.url}/ping") as resp:
            assert resp.status == 204
        env = read_env_file(tmp_path)
        assert env["ELDERCARE_MQTT_PORT"] == str(services.mosquitto.port)
        assert env["ELDERCARE_INFLUX_URL"] == services.influxdb.url
        # Commands pick the local services up when nothing else is configured.
        settings = load_settings(run_dir=tmp_path)
        assert settings.mqtt_port == services.mosquitto.port
        assert settings.influx_url == services.influxdb.url
        # ...but an explicit setting wins.
        assert load_settings(run_dir=tmp_path, mqtt_port=1).mqtt_port == 1
    finally:
        services.down()
        blocker.close()
    assert not any(s.running for s in services.status())
