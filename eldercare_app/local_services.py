"""Local services, the embedded default: Mosquitto and InfluxDB run by the project.

Each service runs as a process the project started, with its configuration,
data, log and pid file under `<run_dir>/services/<name>/`. A service takes its
standard port when that is free and any free port otherwise, so it never fights
a broker or database that is already on the machine. `up` is idempotent: a
running, healthy service is reused.

The chosen ports are recorded in `<run_dir>/services/env`, which
`eldercare services env` prints and `load_settings` reads when no broker or
InfluxDB is configured explicitly.

The broker refuses anonymous clients: its platform account is made on first start
and recorded in the env file (0600) as ELDERCARE_MQTT_USERNAME/PASSWORD; site
accounts and the ACL come from the registry (`eldercare mqtt ...`, docs/security.md).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import random
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

from eldercare.errors import EldercareError
from eldercare.logs import get_logger
from eldercare.settings import LOCAL_SERVICES_ENV_FILE as ENV_FILE
from eldercare.settings import Settings
from eldercare_app.mqtt_accounts import (
    PLATFORM_USER,
    BrokerFiles,
    ensure_platform_account,
    platform_password,
    write_private,
)

log = get_logger(__name__)


# The local broker refuses anonymous clients unless a caller asks otherwise (auth=False).
MQTT_AUTH_BY_DEFAULT = True


class ServiceError(EldercareError, RuntimeError):
    """A local service could not be started or is unhealthy."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _listen_range() -> tuple[int, int] | None:
    """Ports to listen on that outgoing connections never take: below the kernel's
    ephemeral range. A port picked by binding port 0 lies inside that range, so once a
    service stops, any process's next outgoing connection may take it as its local port,
    and the restarted service could not have it back (a client configured with its URL
    would then talk to nothing)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    if low <= 11000:
        return None  # no room below the ephemeral range
    return max(10000, low - 12000), low - 1


# Set by the test suite: its processes run side by side (pytest-xdist), and two of them
# finding a standard port free at once would both take it (one then fails to listen).
ANY_PORT_ENV = "ELDERCARE_SERVICES_ANY_PORT"


def standard(port: int) -> int | None:
    """The standard port to prefer, unless told to take any free port."""
    return None if os.environ.get(ANY_PORT_ENV) else port


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """`preferred` if it is free, else a free port below the ephemeral range (where a
    service restarted later gets it back), else any free port."""
    if preferred is not None and port_is_free(preferred, host):
        return preferred
    span = _listen_range()
    if span is not None:
        pick = random.Random()
        for _ in range(200):
            port = pick.randint(*span)
            if port_is_free(port, host):
                return port
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
        port = self._port_to_listen_on()
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

    def _port_to_listen_on(self, patience_s: float = 10.0) -> int:
        """The port of the last run if it is free (give a restart a moment to get it
        back), else the standard port, else any free one (never fight over a port)."""
        if self.port is not None:
            deadline = time.monotonic() + patience_s
            while True:
                if port_is_free(self.port):
                    return self.port
                if time.monotonic() >= deadline:
                    log.warning(
                        "port of the last run taken; listening elsewhere",
                        extra={"service": self.name, "port": self.port},
                    )
                    break
                time.sleep(0.2)
        return free_port(standard(self.standard_port))

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
    """The local broker. Anonymous clients are refused: the platform's account is created
    on first start (see `eldercare_app.mqtt_accounts`), site accounts by `eldercare mqtt
    credentials`. With `tls`, a second listener serves TLS with a certificate from a CA
    of the run directory's own (`tls/ca.pem`), and the env points clients at it."""

    name = "mosquitto"
    binary = "mosquitto"
    standard_port = 1883
    standard_tls_port = 8883

    def __init__(self, run_dir: Path, tls: bool = False, auth: bool | None = None) -> None:
        super().__init__(run_dir)
        self.tls = tls
        self.auth = MQTT_AUTH_BY_DEFAULT if auth is None else auth
        self.tls_port_file = self.dir / "tls_port"
        self.tls_dir = self.dir / "tls"

    @property
    def broker_files(self) -> BrokerFiles:
        return BrokerFiles.in_dir(self.dir)

    @property
    def tls_port(self) -> int | None:
        try:
            return int(self.tls_port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.pem"

    def platform_password(self) -> str | None:
        return platform_password(self.broker_files)

    def start(self, timeout: float = 30.0) -> ServiceStatus:
        if self.running() and (self.tls, self.auth) != self._running_mode():
            self.stop()  # asked for another TLS or auth mode: restart with the new config
        return super().start(timeout)

    def _running_mode(self) -> tuple[bool, bool]:
        try:
            conf = (self.dir / "mosquitto.conf").read_text()
        except OSError:
            conf = ""
        return self.tls_port is not None, "allow_anonymous false" in conf

    def write_config(self, port: int) -> list[str]:
        data = self.dir / "data"
        data.mkdir(exist_ok=True)
        ensure_platform_account(self.broker_files)
        tls_port = None
        if self.tls:
            ensure_local_certificates(self.tls_dir)
            tls_port = free_port(self.tls_port or standard(self.standard_tls_port))
            if tls_port == port:
                tls_port = free_port()
            self.tls_port_file.write_text(str(tls_port))
        else:
            self.tls_port_file.unlink(missing_ok=True)
        conf = self.dir / "mosquitto.conf"
        conf.write_text(self.config_text(port, data, tls_port))
        return [shutil.which(self.binary) or self.binary, "-c", str(conf)]

    def config_text(self, port: int, data: Path, tls_port: int | None = None) -> str:
        files = self.broker_files
        lines = [
            # Run as whoever started the services: as root Mosquitto would otherwise
            # switch to the `mosquitto` user, which cannot read our 0600 password file.
            f"user {getpass.getuser()}",
            "per_listener_settings false",
        ]
        if self.auth:
            lines += [
                "allow_anonymous false",
                f"password_file {files.password_file}",
                f"acl_file {files.acl_file}",
            ]
        else:
            lines.append("allow_anonymous true")
        lines.append(f"listener {port} {self.host}")
        if tls_port is not None:
            lines += [
                f"listener {tls_port} {self.host}",
                f"cafile {self.tls_dir / 'ca.pem'}",
                f"certfile {self.tls_dir / 'server.pem'}",
                f"keyfile {self.tls_dir / 'server.key'}",
                "tls_version tlsv1.2",
            ]
        # Persistence keeps the ingest session's queued QoS 1 messages across a
        # broker restart; the large queue lets a restarting platform catch up.
        lines += [
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
        return "\n".join(lines)

    def healthy(self) -> bool:
        port = self.port
        return port is not None and _tcp_open(self.host, port)


def ensure_local_certificates(folder: Path, days: int = 825) -> None:
    """A CA and a server certificate for 127.0.0.1/localhost, made once with openssl."""
    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem")
    )
    if ca.exists() and cert.exists() and key.exists():
        return
    if shutil.which("openssl") is None:
        raise ServiceError("openssl not found: needed to make the local broker's TLS certificate")
    folder.mkdir(parents=True, exist_ok=True)
    ext = folder / "server.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
    )
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
         "-days", str(days), "-subj", "/CN=eldercare local CA"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
         "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(cert), "-days", str(days), "-extfile", str(ext)],
    ]  # fmt: skip
    for args in steps:
        done = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise ServiceError(f"openssl {args[0]} failed: {done.stderr.strip()}")
    for private in (ca_key, key):
        os.chmod(private, 0o600)


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


class NatsServer(LocalService):
    """A local NATS server with JetStream, alone or as one node of a local cluster.

    As a cluster node it routes to its peers' cluster ports, chosen once by
    `NatsCluster` and kept in `cluster_port` so a restarted node rejoins on the same
    route."""

    name = "nats"
    binary = "nats-server"
    standard_port = 4222

    def __init__(self, run_dir: Path, node: str = "nats", peers: list[NatsServer] | None = None):
        self.name = node  # type: ignore[misc]  # one folder per node
        super().__init__(run_dir)
        self.peers = peers
        self.cluster_port_file = self.dir / "cluster_port"

    @property
    def cluster_port(self) -> int | None:
        try:
            return int(self.cluster_port_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def ensure_cluster_port(self) -> int:
        port = self.cluster_port
        if port is None or (not self.running() and not port_is_free(port)):
            self.dir.mkdir(parents=True, exist_ok=True)
            port = free_port()
            self.cluster_port_file.write_text(str(port))
        return port

    def write_config(self, port: int) -> list[str]:
        store = self.dir / "jetstream"
        store.mkdir(exist_ok=True)
        lines = [
            f'server_name: "{self.name}"',
            f'listen: "{self.host}:{port}"',
            f'jetstream {{ store_dir: "{store}", max_memory_store: 256MB, max_file_store: 8GB }}',
        ]
        if self.peers is not None:
            routes = ", ".join(
                f'"nats-route://{self.host}:{peer.ensure_cluster_port()}"'
                for peer in self.peers
                if peer is not self
            )
            lines.append(
                f'cluster {{ name: "eldercare", listen: "{self.host}:{self.ensure_cluster_port()}",'
                f" routes: [{routes}] }}"
            )
        conf = self.dir / "nats.conf"
        conf.write_text("\n".join(lines) + "\n")
        return [shutil.which(self.binary) or self.binary, "-c", str(conf)]

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def healthy(self) -> bool:
        port = self.port
        return port is not None and _tcp_open(self.host, port)


class NatsCluster:
    """Three local NATS nodes in one JetStream cluster (for tests and benchmarks).

    Nodes start one after another: a node is healthy once it listens for clients, and
    JetStream elects its meta leader once two of three have met (clients wait for it)."""

    size = 3

    def __init__(self, run_dir: Path) -> None:
        self.nodes: list[NatsServer] = []
        # The first node to start settles every node's cluster port (its routes name
        # them all); nothing is written before that, so looking costs nothing.
        for i in range(1, self.size + 1):
            self.nodes.append(NatsServer(run_dir, node=f"nats-{i}", peers=self.nodes))

    @property
    def url(self) -> str:
        return ",".join(node.url for node in self.nodes)


class LocalServices:
    """The set of local services of one run directory."""

    def __init__(
        self,
        run_dir: Path,
        mqtt_tls: bool = False,
        mqtt_auth: bool | None = None,
        *,
        nats: bool | None = None,
        cluster: bool | None = None,
    ) -> None:
        """`nats`: also a NATS server, for the cluster roles (`eldercare services up` asks
        for it; the embedded platform, the demo and the tests need none); `cluster`: three
        NATS nodes instead of one. None: as the last `up` of this run directory left them."""
        self.run_dir = run_dir
        self.mosquitto = Mosquitto(run_dir, tls=mqtt_tls, auth=mqtt_auth)
        self.influxdb = InfluxDB(run_dir)
        had_cluster = (run_dir / "services" / "nats-1").is_dir()
        if cluster is None:
            cluster = had_cluster
        if nats is None:
            nats = cluster or had_cluster or (run_dir / "services" / "nats").is_dir()
        self.nats_cluster = NatsCluster(run_dir) if nats and cluster else None
        self.nats: list[NatsServer] = []
        if self.nats_cluster is not None:
            self.nats = self.nats_cluster.nodes
        elif nats:
            self.nats = [NatsServer(run_dir)]

    @property
    def all(self) -> list[LocalService]:
        return [self.mosquitto, self.influxdb, *self.nats]

    @property
    def nats_url(self) -> str:
        return ",".join(node.url for node in self.nats if node.port is not None)

    def up(self) -> list[ServiceStatus]:
        # One NATS layout at a time: a single node when the cluster is asked for goes, and
        # the other way round.
        other = (
            [NatsServer(self.run_dir)]
            if self.nats_cluster is not None
            else NatsCluster(self.run_dir).nodes
        )
        for svc in other:
            if svc.running():
                svc.stop()
        statuses = [svc.start() for svc in self.all]
        self.write_env()
        return statuses

    def down(self) -> None:
        # Whichever NATS layout the last `up` chose: stop every node of this run directory.
        every_nats = [NatsServer(self.run_dir), *NatsCluster(self.run_dir).nodes]
        for svc in [self.mosquitto, self.influxdb, *every_nats]:
            svc.stop()
        (self.run_dir / "services" / ENV_FILE).unlink(missing_ok=True)

    def status(self) -> list[ServiceStatus]:
        return [svc.status() for svc in self.all]

    def env(self) -> dict[str, str]:
        mqtt = self.mosquitto
        env = {
            "ELDERCARE_MQTT_HOST": mqtt.host,
            "ELDERCARE_MQTT_PORT": str(mqtt.port or ""),
            "ELDERCARE_MQTT_USERNAME": PLATFORM_USER,
            "ELDERCARE_MQTT_PASSWORD": mqtt.platform_password() or "",
        }
        if self.influxdb.port is not None:  # not started: no URL to offer
            env["ELDERCARE_INFLUX_URL"] = self.influxdb.url
            env["ELDERCARE_INFLUX_DB"] = self.influxdb.database
        if self.nats_url:
            env["ELDERCARE_NATS_URL"] = self.nats_url
            env["ELDERCARE_CLUSTER_REPLICAS"] = str(len(self.nats))
        if mqtt.tls_port is not None:
            env["ELDERCARE_MQTT_PORT"] = str(mqtt.tls_port)
            env["ELDERCARE_MQTT_TLS"] = "true"
            env["ELDERCARE_MQTT_CA_FILE"] = str(mqtt.ca_file)
        return env

    def write_env(self) -> None:
        # 0600: it holds the platform's broker password.
        path = self.run_dir / "services" / ENV_FILE
        write_private(path, "".join(f"{k}={v}\n" for k, v in self.env().items()))


ISSUED_DIR = "issued"  # beside the local broker's files: new site passwords, one file each


def local_issued_dir(settings: Settings, host: str, port: int) -> Path | None:
    """The local broker's folder of issued site passwords, if `host:port` is the project's
    local broker (of `settings.run_dir`) and it enforces accounts; else None."""
    broker = LocalServices(settings.run_dir).mosquitto
    if not broker.broker_files.password_file.exists():
        return None
    if host not in ("127.0.0.1", "localhost", broker.host):
        return None
    if port not in (broker.port, broker.tls_port):
        return None
    return broker.dir / ISSUED_DIR
