"""Process settings: `ELDERCARE_*` environment variables, else `eldercare.toml`, else defaults.

`eldercare services env` prints the variables for the local services in the same
names, so `set -a; . <(eldercare services env)` wires any shell to them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from eldercare.wire import ingest_subscriptions

RUN_DIR_DEFAULT = Path(".run")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ELDERCARE_",
        extra="forbid",
        toml_file=os.environ.get("ELDERCARE_CONFIG", "eldercare.toml"),
    )

    run_dir: Path = Field(RUN_DIR_DEFAULT, description="state of local services, spool, quarantine")

    mqtt_host: str = Field("127.0.0.1", description="MQTT broker host")
    mqtt_port: int = Field(1883, description="MQTT broker port")
    mqtt_username: str | None = Field(None, description="MQTT user name")
    mqtt_password: str | None = Field(None, description="MQTT password")
    mqtt_tls: bool = Field(False, description="connect to the broker over TLS")
    mqtt_ca_file: Path | None = Field(None, description="CA bundle for the broker's certificate")
    mqtt_client_id: str = Field(
        "eldercare-ingest", description="fixed client id: the broker keeps its session"
    )
    mqtt_topics: list[str] = Field(
        default_factory=ingest_subscriptions,
        description="subscriptions of the ingest session",
    )

    influx_url: str = Field("http://127.0.0.1:8086", description="InfluxDB HTTP API base URL")
    influx_db: str = Field("eldercare", description="InfluxDB database (1.x) / bucket mapping")
    influx_token: str | None = Field(None, description="token for InfluxDB 2.x/3.x (v1 compat API)")
    influx_username: str | None = Field(None, description="user for InfluxDB 1.x auth")
    influx_password: str | None = Field(None, description="password for InfluxDB 1.x auth")

    spool_max_mb: int = Field(
        4096,
        ge=1,
        description="cap of ingest's on-disk spool while InfluxDB is away; past it, readings "
        "stay unacknowledged with the broker (detection goes on)",
    )
    spool_min_free_mb: int = Field(
        1024,
        ge=0,
        description="the spool never leaves less than this free on its disk (the alert "
        "store usually shares it)",
    )

    database_url: str = Field(
        "",
        description="SQLAlchemy async URL of the relational store "
        "(default: SQLite at <run_dir>/eldercare.db)",
    )

    alert_policies_dir: Path | None = Field(
        None, description="folder of per-site escalation policy overrides (<site id>.yaml)"
    )

    clock_mode: Literal["wall", "event"] = Field("wall", description="how detector timers advance")
    detector_snapshot_every_s: float = Field(
        10.0,
        gt=0,
        description="how often detector state of changed sites is saved, so a crash loses at "
        "most this much of it (an open timer such as a possible fall's survives a kill -9)",
    )
    http_host: str = Field("127.0.0.1", description="gateway bind address")
    http_port: int = Field(8080, description="gateway port")
    public_url: str = Field(
        "http://127.0.0.1:8080", description="base URL used in notification links"
    )
    field_policy: Path | None = Field(
        None, description="YAML of field-service deadlines (field_service.policy); default built in"
    )
    field_responder_sms_url: str | None = Field(
        None,
        description="Apprise URL of an SMS provider with {phone} where the number goes "
        "(e.g. aliyunsms://KEY:SECRET@SMS_123/{phone}?sign=...): a responder with a phone "
        "is sent each new order by it, besides their own notify URLs",
    )
    device_fault_watch: bool = Field(
        True,
        description="raise device_fault notices for overdue device tests and faults "
        "unfixed within 2 hours (JGJ/T 484)",
    )
    provider_callback_token: str = Field(
        "",
        description="shared secret in the status callback URL given to SMS/voice providers "
        "(?token=...); empty: the callback routes are off",
    )

    ingest_site_limits: bool = Field(
        True,
        description="throttle a site sending more than its devices plausibly can "
        "(off in event-clock replays regardless)",
    )
    ingest_site_rates: dict[str, float] = Field(
        default_factory=dict,
        description="messages a second allowed per site id, replacing the default "
        "(1 per device, at least 5)",
    )
    ingest_emergency_lane: bool = Field(
        True,
        description="a second MQTT session for native SOS and fall topics, so a flood "
        "queued on the main session cannot delay them",
    )
    metrics_token: str | None = Field(
        None,
        description="bearer token a scraper sends to /metrics (default: one made in "
        "<run_dir>/metrics.token)",
    )
    run_lease_ttl_s: float = Field(
        30.0,
        gt=0,
        description="how long a killed `eldercare run` keeps the store's run lease "
        "(a second run on the store is refused while the lease is live)",
    )

    nats_url: str = Field(
        "",
        description="NATS servers for the cluster roles, comma-separated "
        "(empty: the local ones of `eldercare services up`, else none)",
    )
    cluster_partitions: int = Field(
        64, ge=1, le=4096, description="fixed number of site partitions (never change live)"
    )
    cluster_replicas: int = Field(
        1, ge=1, le=5, description="JetStream replicas of the cluster's streams and buckets"
    )
    cluster_lease_ttl_s: float = Field(
        10.0, gt=0, description="a role's lease expires this long after its last renewal"
    )
    cluster_snapshot_every_s: float = Field(
        10.0, gt=0, description="how often a detector worker records snapshots and position"
    )
    worker_id: str = Field("", description="this worker's name in leases (default host:pid)")

    log_level: str = Field("INFO", description="logging level")
    log_format: Literal["text", "json"] = Field("text", description="log line format")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            SecretFileSettingsSource(settings_cls),
            file_secret_settings,
            TomlConfigSettingsSource(settings_cls),
        )

    @field_validator("influx_url")
    @classmethod
    def _influx_url_has_scheme_and_host(cls, value: str) -> str:
        # "127.0.0.1:8086" parses as scheme "127.0.0.1": refuse it here rather than have
        # every write fail later while the platform looks healthy.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8086"
            )
        try:
            parts.port  # noqa: B018 (raises on a port out of range or not a number)
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return value

    @model_validator(mode="after")
    def _store_beside_run_dir(self) -> Settings:
        # One run directory holds one platform's state: its store goes with it.
        if not self.database_url:
            url = f"sqlite+aiosqlite:///{self.run_dir / 'eldercare.db'}"
            object.__setattr__(self, "database_url", url)
        return self


# Secrets that may come from a file (Docker/Kubernetes secrets): ELDERCARE_<NAME>_FILE.
SECRET_FIELDS = (
    "mqtt_password",
    "influx_token",
    "influx_password",
    "database_url",
    "metrics_token",
    "provider_callback_token",
)


class SecretFileSettingsSource(PydanticBaseSettingsSource):
    """`ELDERCARE_MQTT_PASSWORD_FILE=/run/secrets/mqtt` reads the secret from that file
    (trailing newline stripped), so it never sits in the environment or the TOML."""

    def get_field_value(self, field: object, field_name: str) -> tuple[object, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for name in SECRET_FIELDS:
            path = os.environ.get(f"ELDERCARE_{name.upper()}_FILE")
            if path:
                values[name] = Path(path).read_text(encoding="utf-8").strip()
        return values


# Where `eldercare services up` (eldercare_app.local_services) records the local broker's
# and InfluxDB's addresses, under `<run_dir>/services/`: read here, so every process of
# this run directory finds them without importing the code that starts them.
LOCAL_SERVICES_ENV_FILE = "env"


def read_env_file(run_dir: Path) -> dict[str, str]:
    """The `KEY=VALUE` lines recorded by the last `up`, or {} when none are running."""
    path = run_dir / "services" / LOCAL_SERVICES_ENV_FILE
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in lines if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


_LOCAL_BROKER_ONLY = frozenset({"mqtt_username", "mqtt_password", "mqtt_tls", "mqtt_ca_file"})


def load_settings(**overrides: object) -> Settings:
    """Settings from overrides, environment and `eldercare.toml`; then, for the broker and
    InfluxDB only where none of those configured them, the project's local services."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    local = read_env_file(settings.run_dir)
    fill = {}
    # The local broker's account must not be offered to a broker configured elsewhere.
    own_broker = (settings.mqtt_host, str(settings.mqtt_port)) == (
        local.get("ELDERCARE_MQTT_HOST", settings.mqtt_host),
        local.get("ELDERCARE_MQTT_PORT", str(settings.mqtt_port)),
    ) or not {"mqtt_host", "mqtt_port"} & settings.model_fields_set
    for key, value in local.items():
        name = key.removeprefix("ELDERCARE_").lower()
        if name in _LOCAL_BROKER_ONLY and not own_broker:
            continue
        if name in Settings.model_fields and name not in settings.model_fields_set and value:
            fill[name] = value
    if not fill:
        return settings
    return Settings(**{**settings.model_dump(exclude_unset=True), **fill})
