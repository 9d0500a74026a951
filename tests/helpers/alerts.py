"""Shared pieces of the alert tests: real receivers (an HTTP server for Apprise's
json://, an SMTP server for mailto://), a registry, transitions, a pipeline factory."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

from alerts.pipeline import AlertPipeline
from alerts.policy import EscalationPolicy, PolicySet, load_policy
from alerts.service import AlertService
from alerts.store import AlertStore
from eldercare.clock import FakeClock
from eldercare.domain import AlertKind, Evidence, Severity, Transition, TransitionAction
from eldercare.registry_index import RegistryIndex
from eldercare.registry_model import RegistryDocument

# 2026-11-23 02:41:00 Asia/Shanghai
T0 = 1_795_372_860.0
PUBLIC_URL = "https://care.example.org"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    path: str
    doc: dict[str, Any]
    at: float = field(default_factory=time.time)  # wall time of arrival


@dataclass
class HttpReceiver:
    """A real HTTP server that records what Apprise's json:// plugin posts to it."""

    port: int
    received: list[Received] = field(default_factory=list)
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == "/" + path]


@dataclass
class SmtpReceiver:
    port: int
    messages: list[Message] = field(default_factory=list)

    def url(self, to: str) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=centre@example.org&to={to}&mode=insecure"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address in str(m["To"])]


def subject(m: Message) -> str:
    return str(make_header(decode_header(str(m["Subject"]))))


def text_body(m: Message) -> str:
    for part in m.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part")


def registry(
    daughter_urls: list[str],
    son_urls: list[str] | None = None,
    supervisor_urls: list[str] | None = None,
) -> RegistryIndex:
    doc = RegistryDocument.model_validate(
        {
            "sites": [
                {
                    "id": "hh-3-2-401",
                    "kind": "home",
                    "name": "张秀英家",
                    "organisation": "滨州市/滨城区/市中街道/黄河社区",
                    "address": "黄河社区 3-2-401",
                    "timezone": "Asia/Shanghai",
                    "rooms": [
                        {"id": "bedroom", "kind": "bedroom", "name": "卧室"},
                        {"id": "bathroom", "kind": "bathroom", "name": "卫生间"},
                    ],
                    "residents": [
                        {
                            "id": "zhang-xiuying",
                            "name": "张秀英",
                            "sex": "f",
                            "room": "bedroom",
                            "phone": "13800000001",
                        }
                    ],
                    "devices": [
                        {"id": "sos-1", "kind": "sos_button", "room": "bedroom"},
                        {"id": "radar-1", "kind": "fall_radar", "room": "bedroom"},
                    ],
                    "contacts": [
                        {
                            "id": "daughter",
                            "name": "李梅",
                            "role": "family",
                            "phone": "13900000002",
                            "language": "zh-CN",
                            "residents": ["zhang-xiuying"],
                            "apprise": daughter_urls,
                            "order": 0,
                        },
                        {
                            "id": "son",
                            "name": "Li Wei",
                            "role": "family",
                            "phone": "13900000003",
                            "language": "en",
                            "residents": ["zhang-xiuying"],
                            "apprise": son_urls or [],
                            "order": 1,
                        },
                        {
                            "id": "super",
                            "name": "王主任",
                            "role": "supervisor",
                            "language": "zh-CN",
                            "apprise": supervisor_urls or [],
                        },
                    ],
                }
            ]
        }
    )
    return RegistryIndex(doc)


SITE = "hh-3-2-401"
RESIDENT = "zhang-xiuying"


def policies(centre_urls: list[str], **delivery: Any) -> PolicySet:
    base = load_policy()
    doc = base.model_dump(mode="json")
    doc["centre"]["apprise"] = centre_urls
    doc["centre"]["phone"] = "0543-1234567"
    doc["delivery"].update(delivery)
    return PolicySet(EscalationPolicy.model_validate(doc))


def transition(
    kind: AlertKind,
    ts: float,
    action: TransitionAction = TransitionAction.RAISE,
    severity: Severity | None = None,
    site: str = SITE,
    resident: str | None = RESIDENT,
    room: str | None = "bedroom",
    **details: Any,
) -> Transition:
    from eldercare.domain import DEFAULT_SEVERITY

    return Transition(
        action=action,
        kind=kind,
        site_id=site,
        ts=ts,
        severity=severity or DEFAULT_SEVERITY[kind],
        resident_id=resident,
        room_id=room,
        device_id="sos-1",
        evidence=(Evidence(ts, "sos-1", "sos", "button pressed", room),),
        details=details,
    )


def make_pipeline(
    store: AlertStore,
    index: RegistryIndex,
    clock: FakeClock,
    policy_set: PolicySet,
    **kwargs: Any,
) -> tuple[AlertPipeline, AlertService]:
    pipeline = AlertPipeline(
        store, lambda: index, clock, public_url=PUBLIC_URL, policies=policy_set, **kwargs
    )
    service = AlertService(
        store,
        clock,
        lambda: index,
        public_url=PUBLIC_URL,
        policies=policy_set,
        recorder=kwargs.get("recorder"),
    )
    return pipeline, service


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/alerts.db"
