"""The cluster deployment, validated without Docker: every role's container runs `eldercare
run --role`, with valid settings and a health check; three NATS nodes route to one
another with a configuration the machine's nats-server accepts; the store is PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from eldercare.settings import Settings
from eldercare_app.cluster_role_names import ROLES
from eldercare_app.cluster_roles import HEARTBEAT_FILE

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
CLUSTER = DEPLOY / "docker-compose.cluster.yml"
NATS_CONF = DEPLOY / "nats" / "nats.conf"


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    doc = yaml.safe_load(CLUSTER.read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert isinstance(doc, dict)
    return doc


def _roles(cluster: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in cluster["services"].items()
        if svc.get("command", [])[:2] == ["run", "--role"]
    }


def test_every_role_runs_with_a_health_check(cluster: dict[str, Any]) -> None:
    roles = _roles(cluster)
    assert {svc["command"][2] for svc in roles.values()} == set(ROLES)
    for name, svc in cluster["services"].items():
        check = svc.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
        assert svc["restart"] == "unless-stopped", name
        assert svc["profiles"] == ["cluster"], f"{name} starts only with --profile cluster"
    for name, svc in roles.items():
        run_dir = svc["environment"]["ELDERCARE_RUN_DIR"]
        assert f"{run_dir}/{HEARTBEAT_FILE}" in " ".join(svc["healthcheck"]["test"]), name
    assert cluster["services"]["pipeline"]["deploy"]["replicas"] >= 2, "a standby pipeline"


def test_role_environment_is_valid_cluster_settings(cluster: dict[str, Any]) -> None:
    for name, svc in _roles(cluster).items():
        env = {k: str(v) for k, v in svc["environment"].items()}
        unknown = {
            k for k in env if k.removeprefix("ELDERCARE_").lower() not in Settings.model_fields
        }
        assert not unknown, (name, unknown)
        # The environment's strings, parsed by Settings as from ELDERCARE_* variables.
        fields: dict[str, Any] = {k.removeprefix("ELDERCARE_").lower(): v for k, v in env.items()}
        settings = Settings(**fields)
        assert settings.database_url.startswith("postgresql+asyncpg://"), name
        assert settings.cluster_replicas == 3
        nodes = [u.split("//")[1].split(":")[0] for u in settings.nats_url.split(",")]
        assert nodes == ["nats-1", "nats-2", "nats-3"], name
        for node in nodes:
            assert svc["depends_on"][node]["condition"] == "service_healthy"


def test_dependencies_resolve_across_both_files(
    cluster: dict[str, Any], base: dict[str, Any]
) -> None:
    services = {**base["services"], **cluster["services"]}
    volumes = set(base.get("volumes") or {}) | set(cluster.get("volumes") or {})
    for name, svc in cluster["services"].items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, (name, dep)
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], (name, dep)
        for mount in svc.get("volumes") or []:
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in volumes, (name, source)


def test_nats_nodes_route_to_each_other_and_the_config_is_valid(cluster: dict[str, Any]) -> None:
    text = NATS_CONF.read_text()
    for node in ("nats-1", "nats-2", "nats-3"):
        assert f"nats-route://{node}:6222" in text
        svc = cluster["services"][node]
        assert svc["environment"]["NATS_SERVER_NAME"] == node
        assert "./nats/nats.conf:/etc/nats/nats.conf:ro" in svc["volumes"]
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not os.path.exists(binary):
        pytest.skip("nats-server not installed (make setup installs it)")
    done = subprocess.run(
        [binary, "-c", str(NATS_CONF), "-t"],
        env={**os.environ, "NATS_SERVER_NAME": "nats-1"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is valid" in done.stdout + done.stderr
