"""`eldercare services up` runs NATS beside the broker and InfluxDB, on a free port, and
`--cluster` three nodes in one JetStream cluster; the env file points the roles at them."""

from __future__ import annotations

import socket
from pathlib import Path

import nats
from nats.js.api import StreamConfig

from eldercare.settings import load_settings, read_env_file
from eldercare_app.local_services import LocalServices, port_is_free
from tests.helpers.polling import wait_for


async def test_cluster_up_gives_three_nodes_one_jetstream(tmp_path: Path) -> None:
    blocker = socket.socket()
    if port_is_free(4222):  # never fight over the standard port: hold it if it is free
        blocker.bind(("127.0.0.1", 4222))
        blocker.listen()
    services = LocalServices(tmp_path, cluster=True)
    try:
        statuses = services.up()
        assert all(s.healthy for s in statuses)
        assert [s.name for s in statuses][-3:] == ["nats-1", "nats-2", "nats-3"]
        assert 4222 not in [node.port for node in services.nats]
        env = read_env_file(tmp_path)
        assert env["ELDERCARE_NATS_URL"] == services.nats_url
        assert load_settings(run_dir=tmp_path).cluster_replicas == 3
        nc = await nats.connect(services.nats_url.split(","))
        js = nc.jetstream(timeout=5)

        async def replicated() -> bool:
            try:
                await js.add_stream(StreamConfig(name="probe", subjects=["probe"], num_replicas=3))
            except Exception:  # no meta leader yet
                return False
            return True

        await wait_for(replicated, 30, "a stream on three replicas")
        info = await js.stream_info("probe")
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2
        await nc.close()
        # Asking for one node replaces the cluster (one NATS layout at a time).
        single = LocalServices(tmp_path, cluster=False)
        single.up()
        assert [n.name for n in single.nats] == ["nats"]
        assert not any(node.running() for node in services.nats)
    finally:
        LocalServices(tmp_path).down()
        blocker.close()
    assert not any(n.running() for n in LocalServices(tmp_path, cluster=True).nats)


def test_single_nats_when_asked_none_for_the_embedded_platform(tmp_path: Path) -> None:
    embedded = LocalServices(tmp_path / "embedded")  # demo, tests: no NATS needed
    assert embedded.nats == []
    services = LocalServices(tmp_path / "cli", nats=True)  # `eldercare services up`
    try:
        statuses = services.up()
        assert [s.name for s in statuses] == ["mosquitto", "influxdb", "nats"]
        assert all(s.healthy for s in statuses)
        env = read_env_file(tmp_path / "cli")
        assert env["ELDERCARE_NATS_URL"] == services.nats[0].url
        assert env["ELDERCARE_CLUSTER_REPLICAS"] == "1"
        # A later command of the same run directory keeps the NATS it found.
        assert [n.name for n in LocalServices(tmp_path / "cli").nats] == ["nats"]
    finally:
        services.down()
