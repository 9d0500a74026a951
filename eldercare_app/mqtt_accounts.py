"""MQTT accounts: who may connect to the broker and which topics each may use.

Two kinds of account:

- **one per site** (user name = the site id): the site's gateway, or the devices
  of a home that talk MQTT themselves. It may publish, and read back its own
  retained and availability messages, only under `eldercare/<site_id>/#` and the
  vendor topics of the devices the registry binds to that site (a zigbee2mqtt
  base topic + friendly name, `shellies/<id>/#`, `tele/<topic>/#`,
  `stat/<topic>/#`, and `cmnd/<topic>/#` read-only). A stolen site password
  therefore cannot inject readings into another home.
- **the platform** (`eldercare-platform`): ingest, the simulator in tests and the
  operator tools; it reads and writes everything.

Anonymous connections are refused. Secrets: the broker only ever holds hashes
(Mosquitto's PBKDF2-SHA512 `$7$` format in its `password_file`); a site's
password is printed once when created or rotated and stored nowhere else. The
platform's own password must be readable by the platform, so it is kept in a
0600 file beside the broker's config (`platform.secret`) and in the 0600
services env file.

The ACL is a pure function of the registry (`acl_text`), written to Mosquitto's
`acl_file` and reloaded with SIGHUP whenever the registry changes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from eldercare.errors import EldercareError
from eldercare.logs import get_logger
from eldercare.registry_model import Z2M_SUFFIXES, RegistryDocument, Site

log = get_logger(__name__)

PLATFORM_USER = "eldercare-platform"
PASSWORD_FILE = "passwd"
ACL_FILE = "acl"
PLATFORM_SECRET_FILE = "platform.secret"

# Mosquitto's own `mosquitto_passwd` uses 101 iterations; more costs each CONNECT a
# little CPU and makes an offline guess at a stolen password file much dearer.
PBKDF2_ITERATIONS = 1000
_SALT_BYTES = 12
_HASH_BYTES = 64

# A topic level that can go into an ACL line: no wildcards (they would widen the grant),
# no line breaks or NUL (they would inject further ACL lines).
_UNSAFE_TOPIC = re.compile(r"[+#\x00\r\n]")


class MqttAuthError(EldercareError, ValueError):
    """An account or topic that cannot be expressed safely in Mosquitto's files."""


# --------------------------------------------------------------------------- passwords


def new_password() -> str:
    """A fresh random secret (32 URL-safe characters, ~190 bits)."""
    return secrets.token_urlsafe(24)


def hash_password(
    password: str, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None
) -> str:
    """Mosquitto 2's `$7$<iterations>$<salt b64>$<hash b64>` (PBKDF2-HMAC-SHA512)."""
    salt = salt if salt is not None else os.urandom(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, _HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches a `$7$` hash (used by tests and `mqtt check`)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(expected))
    return hmac.compare_digest(digest, expected)


def check_username(name: str) -> str:
    """A name Mosquitto's password file can hold (`user:hash` lines, so no ':')."""
    if not name or ":" in name or _UNSAFE_TOPIC.search(name) or name != name.strip():
        raise MqttAuthError(
            f"{name!r} cannot be an MQTT user name (no ':', '+', '#', spaces at ends)"
        )
    return name


def read_password_file(path: Path) -> dict[str, str]:
    """user → hash; {} when the file does not exist yet."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    entries: dict[str, str] = {}
    for line in lines:
        user, sep, encoded = line.partition(":")
        if sep and user and not line.startswith("#"):
            entries[user] = encoded
    return entries


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically (never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def write_password_file(path: Path, entries: Mapping[str, str]) -> None:
    write_private(path, "".join(f"{check_username(u)}:{h}\n" for u, h in sorted(entries.items())))


# --------------------------------------------------------------------------- ACL


def _topic(text: str, what: str) -> str:
    if not text or _UNSAFE_TOPIC.search(text):
        raise MqttAuthError(f"{what} {text!r} cannot be used in an MQTT ACL")
    return text


def site_topics(
    site: Site, exclusive_z2m_bases: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """(access, topic filter) pairs a site account is granted.

    A zigbee2mqtt base topic used by this site alone is granted whole (its bridge
    topics included); a base shared with other sites only per friendly name."""
    grants: list[tuple[str, str]] = [("readwrite", f"eldercare/{_topic(site.id, 'site id')}/#")]
    bases_done: set[str] = set()
    for device in site.devices:
        vendor = device.vendor
        if vendor is None:
            continue
        if vendor.z2m is not None:
            base = _topic(vendor.z2m.base_topic, "zigbee2mqtt base topic")
            if base in exclusive_z2m_bases:
                if base not in bases_done:
                    grants.append(("readwrite", f"{base}/#"))
                    bases_done.add(base)
            else:
                grants += z2m_device_topics(
                    base, _topic(vendor.z2m.friendly_name, "zigbee2mqtt friendly name")
                )
        if vendor.shelly is not None:
            grants.append(
                ("readwrite", f"shellies/{_topic(vendor.shelly.device_id, 'Shelly id')}/#")
            )
        if vendor.tasmota is not None:
            t = _topic(vendor.tasmota.topic, "Tasmota topic")
            grants += [("readwrite", f"tele/{t}/#"), ("readwrite", f"stat/{t}/#")]
            grants.append(("read", f"cmnd/{t}/#"))
    return grants


def z2m_device_topics(base: str, name: str) -> list[tuple[str, str]]:
    """Exactly the topics zigbee2mqtt uses for one device: a friendly name may contain
    '/', so `<base>/<name>/#` would also cover another home's device `<name>/sos`. The
    registry refuses names with a reserved segment, so these cannot alias another's."""
    device = f"{base}/{name}"
    grants = [("readwrite", device)]
    grants += [("readwrite", f"{device}/{suffix}") for suffix in Z2M_SUFFIXES]
    # Commands for one attribute: `<device>/set/state`, `<device>/get/brightness`.
    grants += [("readwrite", f"{device}/{verb}/+") for verb in ("set", "get")]
    return grants


def _exclusive_z2m_bases(doc: RegistryDocument) -> frozenset[str]:
    users: dict[str, set[str]] = {}
    for site in doc.sites:
        for device in site.devices:
            if device.vendor is not None and device.vendor.z2m is not None:
                users.setdefault(device.vendor.z2m.base_topic, set()).add(site.id)
    return frozenset(base for base, sites in users.items() if len(sites) == 1)


@dataclass(frozen=True)
class AclResult:
    text: str
    sites: list[str]
    skipped: dict[str, str]  # site id → why it has no account


def acl_text(doc: RegistryDocument, platform_user: str = PLATFORM_USER) -> AclResult:
    """Mosquitto's acl_file for the registry: the platform reads and writes all (and reads
    the broker's `$SYS` figures, which `#` does not match); each site only its own topics;
    anyone else nothing (Mosquitto denies what is not granted)."""
    lines = [
        "# Generated by `eldercare mqtt acl` from the registry; edits are overwritten.",
        f"user {check_username(platform_user)}",
        "topic readwrite #",
        "topic read $SYS/#",
        "",
    ]
    exclusive = _exclusive_z2m_bases(doc)
    sites: list[str] = []
    skipped: dict[str, str] = {}
    for site in sorted(doc.sites, key=lambda s: s.id):
        try:
            check_username(site.id)
            if site.id == platform_user:
                raise MqttAuthError(f"{site.id!r} is the platform's account name")
            grants = site_topics(site, exclusive)
        except MqttAuthError as exc:
            skipped[site.id] = str(exc)
            continue
        sites.append(site.id)
        lines.append(f"user {site.id}")
        lines += [f"topic {access} {topic}" for access, topic in dict.fromkeys(grants)]
        lines.append("")
    return AclResult("\n".join(lines) + "\n", sites, skipped)


# --------------------------------------------------------------------------- the broker's files


@dataclass(frozen=True)
class BrokerFiles:
    """Where one broker's password file, ACL and the platform's secret live."""

    password_file: Path
    acl_file: Path
    platform_secret: Path
    pid_file: Path | None = None  # the local Mosquitto's, for SIGHUP

    @classmethod
    def in_dir(cls, folder: Path) -> BrokerFiles:
        return cls(
            folder / PASSWORD_FILE, folder / ACL_FILE, folder / PLATFORM_SECRET_FILE, folder / "pid"
        )


def platform_password(files: BrokerFiles) -> str | None:
    try:
        return files.platform_secret.read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_platform_account(files: BrokerFiles) -> str:
    """The platform's password, created (with its password-file entry) if missing.
    Also creates an ACL granting only the platform when none exists yet."""
    password = platform_password(files)
    entries = read_password_file(files.password_file)
    if password is None:
        password = new_password()
        write_private(files.platform_secret, password + "\n")
        entries.pop(PLATFORM_USER, None)
    stored = entries.get(PLATFORM_USER)
    if stored is None or not verify_password(password, stored):
        entries[PLATFORM_USER] = hash_password(password)
        write_password_file(files.password_file, entries)
    if not files.acl_file.exists():
        write_private(files.acl_file, acl_text(RegistryDocument()).text)
    return password


@dataclass(frozen=True)
class IssuedSecret:
    user: str
    password: str
    rotated: bool


def issue_credentials(
    files: BrokerFiles,
    doc: RegistryDocument,
    only: Iterable[str] | None = None,
    rotate: bool = False,
    platform_user: str = PLATFORM_USER,
) -> list[IssuedSecret]:
    """Create missing accounts (or, with `rotate`, replace passwords) for the registry's sites
    and the platform; drop accounts of sites no longer in the registry. `only` limits which
    accounts are created or rotated (site ids, or the platform's). Returns new secrets."""
    entries = read_password_file(files.password_file)
    acl = acl_text(doc, platform_user)
    wanted = [platform_user, *acl.sites]
    selected = set(wanted if only is None else only)
    unknown = selected - set(wanted)
    if unknown:
        reasons = [
            f"{u}: {acl.skipped.get(u, 'not a site in the registry')}" for u in sorted(unknown)
        ]
        raise MqttAuthError("no account possible for " + "; ".join(reasons))
    issued: list[IssuedSecret] = []
    for user in wanted:
        if user not in selected or (user in entries and not rotate):
            continue
        password = new_password()
        if user == platform_user:
            write_private(files.platform_secret, password + "\n")
        issued.append(IssuedSecret(user, password, rotated=user in entries))
        entries[user] = hash_password(password)
    removed = set(entries) - set(wanted)
    for user in removed:
        del entries[user]
        log.info("mqtt account removed", extra={"user": user})
    write_password_file(files.password_file, entries)
    write_private(files.acl_file, acl.text)
    return issued


def write_acl(
    files: BrokerFiles, doc: RegistryDocument, platform_user: str = PLATFORM_USER
) -> AclResult:
    acl = acl_text(doc, platform_user)
    write_private(files.acl_file, acl.text)
    return acl


def reload_broker(files: BrokerFiles) -> bool:
    """SIGHUP the local Mosquitto so it rereads its password file and ACL; False if none runs."""
    if files.pid_file is None:
        return False
    try:
        pid = int(files.pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGHUP)
        return True
    return False
