"""Readings and transitions as JSON on the cluster's streams.

A transition's message id names the change itself (site, resident, kind, action, event
time), so a detector worker replaying from its last snapshot after a takeover publishes
the same ids again and JetStream's duplicate window drops them: no duplicate alert.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from eldercare.domain import (
    AlertKind,
    Evidence,
    Reading,
    Severity,
    Stream,
    Transition,
    TransitionAction,
)
from eldercare.errors import EldercareError
from eldercare.evidence import EvidenceCode, Observation


class WireError(EldercareError, ValueError):
    """A message on a cluster stream is not a reading or transition of this version."""


def reading_bytes(r: Reading) -> bytes:
    doc = {
        "site": r.site_id,
        "device": r.device_id,
        "stream": r.stream.value,
        "ts": r.ts,
        "fields": dict(r.fields),
        "received_at": r.received_at,
        "room": r.room_id,
        "resident": r.resident_id,
        "source": r.source,
        "timed": r.time_from_payload,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def reading_from(data: bytes) -> Reading:
    try:
        doc = json.loads(data)
        return Reading(
            site_id=_ident(doc["site"]),
            device_id=_ident(doc["device"]),
            stream=Stream(doc["stream"]),
            ts=float(doc["ts"]),
            fields=doc["fields"],
            received_at=float(doc["received_at"]),
            room_id=_optional_ident(doc["room"]),
            resident_id=_optional_ident(doc["resident"]),
            source=doc["source"],
            time_from_payload=bool(doc["timed"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise WireError(f"not a reading: {exc}") from exc


def _ident(value: Any) -> str:
    """An id as one shared string: a detector worker keeps the ids of a site's recent
    readings (its duplicate window, the evidence and last places its rules hold), and
    each decoded reading would otherwise bring copies of its own (~1.5 KB a home)."""
    if not isinstance(value, str):
        raise TypeError(f"an id must be a string, not {value!r}")
    return sys.intern(value)


def _optional_ident(value: Any) -> str | None:
    return None if value is None else _ident(value)


def _evidence_doc(e: Evidence) -> dict[str, Any]:
    return {
        "ts": e.ts,
        "device": e.device_id,
        "stream": e.stream,
        "summary": e.summary,
        "room": e.room_id,
        "obs": [[o.code.value, dict(o.params)] for o in e.observations],
    }


def _evidence_from(doc: dict[str, Any]) -> Evidence:
    return Evidence(
        ts=float(doc["ts"]),
        device_id=doc["device"],
        stream=doc["stream"],
        summary=doc["summary"],
        room_id=doc["room"],
        observations=tuple(Observation(EvidenceCode(c), p) for c, p in doc["obs"]),
    )


def transition_bytes(t: Transition) -> bytes:
    doc = {
        "action": t.action.value,
        "kind": t.kind.value,
        "site": t.site_id,
        "ts": t.ts,
        "severity": t.severity.value,
        "resident": t.resident_id,
        "room": t.room_id,
        "device": t.device_id,
        "evidence": [_evidence_doc(e) for e in t.evidence],
        "details": dict(t.details),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def transition_from(data: bytes) -> Transition:
    try:
        doc = json.loads(data)
        return Transition(
            action=TransitionAction(doc["action"]),
            kind=AlertKind(doc["kind"]),
            site_id=doc["site"],
            ts=float(doc["ts"]),
            severity=Severity(doc["severity"]),
            resident_id=doc["resident"],
            room_id=doc["room"],
            device_id=doc["device"],
            evidence=tuple(_evidence_from(e) for e in doc["evidence"]),
            details=doc["details"],
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise WireError(f"not a transition: {exc}") from exc


def transition_id(t: Transition) -> str:
    """The same change gives the same id, however often a replay produces it."""
    return f"{t.site_id}|{t.resident_id or ''}|{t.kind.value}|{t.action.value}|{t.ts!r}"
