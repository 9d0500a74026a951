"""Local services, the embedded default: Mosquitto and InfluxDB run by the project.

Each service runs as a process the project started, with its configuration,
data, log and pid file under `<run_dir>/services/<name>/`. A service takes its
standard port when that is free and any free port otherwise, so it never fights
a broker or database that is already on the machine. `up` is idempotent: a
running, healthy service is reused.

The chosen ports are recorded in `<run_dir>/services/env`, which
`eldercare services env` prints and `load_settings` reads when no broker or
InfluxDB is configured explicitly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from eldercare.logs import get_logger

log = get_logger(__name__)

ENV_FILE = "env"


class ServiceError(RuntimeError):
    """A local service could not be started or is unhealthy."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    if preferred is not None and port_is_free(preferred, host):
        return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class ServiceStatus:
    name: str
    running: bool
    healthy: bool
    pid: int | None
    port: int | None
    detail: str = ""


class LocalService:
    """One local server process with its own folder."""

    name: ClassVar[str]
    binary: ClassVar[str]
    standard_port: ClassVar[int]
    host = "127.0.0.1"

    def __init__(self, run_dir: Path) -> None:
        self.dir = (run_dir / "services" / self.name).resolve()
        self.pid_file = self.dir / "pid"
        self.port_file = self.dir / "port"
        self.log_file = self.dir / "log"

    # -- state on disk -------------------------------------------------
    @property
    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def port(self) -> int | None:
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.pid
        return pid is not None and _pid_alive(pid)

    # -- subclass hooks --------------------------------------------------
    def write_config(self, port: int) -> list[str]:
        """Write the config for `port`; return the command line."""
        raise NotImplementedError

    def healthy(self) -> bool:
        raise NotImplementedError

    def after_start(self) -> None:
        """Provisioning once healthy (e.g. create the database)."""

    # -- lifecycle -------------------------------------------------------
    def start(self, timeout: float = 30.0) -> ServiceStatus:
        if self.running() and self.healthy():
            return self.status()
        if self.running():
            self.stop()
        if shutil.which(self.binary) is None:
            raise ServiceError(
                f"{self.binary} not found: run `make setup` (installs the Debian package)"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        port = free_port(self.port or self.standard_port)
        if not port_is_free(port):
            port = free_port()
        cmd = self.write_config(port)
        self.port_file.write_text(str(port))
        with open(self.log_file, "ab") as logf:
            proc = subprocess.Popen(
                cmd,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.dir,
                start_new_session=True,  # outlives `eldercare services up`
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with {proc.returncode}; see {self.log_file}:\n"
                    + self._log_tail()
                )
            if self.healthy():
                self.after_start()
                log.info("service started", extra={"service": self.name, "port": port})
                return self.status()
            time.sleep(0.1)
        self.stop()
        raise ServiceError(f"{self.name} not healthy after {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 10.0) -> None:
        pid = self.pid
        if pid is None or not _pid_alive(pid):
            self.pid_file.unlink(missing_ok=True)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        self.pid_file.unlink(missing_ok=True)

    def status(self) -> ServiceStatus:
        running = self.running()
        return ServiceStatus(
            name=self.name,
            running=running,
            healthy=running and self.healthy(),
            pid=self.pid if running else None,
            port=self.port,
        )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Mosquitto(LocalService):
    name = "mosquitto"
    binary = "mosquitto"
    standard_port = 1883

    def write_config(self, port: int) -> list[str]:
        data = self.dir / "data"
        data.mkdir(exist_ok=True)
        conf = self.dir / "mosquitto.conf"
        conf.write_text(self.config_text(port, data))
        return [shutil.which(self.binary) or self.binary, "-c", str(conf)]

    def config_text(self, port: int, data: Path) -> str:
        # Persistence keeps the ingest session's queued QoS 1 messages across a
        # broker restart; the large queue lets a restarting platform catch up.
        return "\n".join(
            [
                f"listener {port} {self.host}",
                "allow_anonymous true",
                "persistence true",
                f"persistence_location {data}/",
                "autosave_interval 30",
                "max_queued_messages 1000000",
                "max_inflight_messages 1000",
                "max_packet_size 1048576",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "log_type notice",
                "",
            ]
        )

    def healthy(self) -> bool:
        port = self.port
        return port is not None and _tcp_open(self.host, port)


class InfluxDB(LocalService):
    name = "influxdb"
    binary = "influxd"
    standard_port = 8086
    database = "eldercare"

    def write_config(self, port: int) -> list[str]:
        rpc_port = free_port()
        for sub in ("meta", "data", "wal"):
            (self.dir / sub).mkdir(exist_ok=True)
        conf = self.dir / "influxdb.conf"
        conf.write_text(
            f"""reporting-enabled = false
bind-address = "{self.host}:{rpc_port}"
[meta]
  dir = "{self.dir}/meta"
[data]
  dir = "{self.dir}/data"
  wal-dir = "{self.dir}/wal"
  query-log-enabled = false
  max-values-per-tag = 0
  max-series-per-database = 0
[monitor]
  store-enabled = false
[http]
  bind-address = "{self.host}:{port}"
  log-enabled = false
  max-body-size = 0
[ifql]
  enabled = false
[continuous_queries]
  log-enabled = false
"""
        )
        return [shutil.which(self.binary) or self.binary, "-config", str(conf)]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def healthy(self) -> bool:
        if self.port is None:
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as resp:
                return int(resp.status) == 204
        except (urllib.error.URLError, OSError):
            return False

    def after_start(self) -> None:
        q = urllib.parse.urlencode({"q": f'CREATE DATABASE "{self.database}"'}).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=q, timeout=10) as resp:
            resp.read()


class LocalServices:
    """The set of local services of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.mosquitto = Mosquitto(run_dir)
        self.influxdb = InfluxDB(run_dir)

    @property
    def all(self) -> list[LocalService]:
        return [self.mosquitto, self.influxdb]

    def up(self) -> list[ServiceStatus]:
        statuses = [svc.start() for svc in self.all]
        self.write_env()
        return statuses

    def down(self) -> None:
        for svc in self.all:
            svc.stop()
        (self.run_dir / "services" / ENV_FILE).unlink(missing_ok=True)

    def status(self) -> list[ServiceStatus]:
        return [svc.status() for svc in self.all]

    def env(self) -> dict[str, str]:
        return {
            "ELDERCARE_MQTT_HOST": self.mosquitto.host,
            "ELDERCARE_MQTT_PORT": str(self.mosquitto.port or ""),
            "ELDERCARE_INFLUX_URL": self.influxdb.url,
            "ELDERCARE_INFLUX_DB": self.influxdb.database,
        }

    def write_env(self) -> None:
        path = self.run_dir / "services" / ENV_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in self.env().items()))


def read_env_file(run_dir: Path) -> dict[str, str]:
    """The `KEY=VALUE` lines recorded by the last `up`, or {} when none are running."""
    path = run_dir / "services" / ENV_FILE
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}
