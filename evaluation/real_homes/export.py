"""A real home written out as `eldercare eval replay` takes it: its registry as YAML and
its recorded life as JSON lines of native MQTT messages (docs/replay.md).

This is how the in-process figures of `eldercare eval home` are checked against the whole
platform (broker, ingest, InfluxDB, detectors, alert pipeline): the same life replayed
both ways should raise the same alarms, and where it does not, the difference is
something an operator would see that the in-process evaluation hides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from eldercare.domain import Reading
from eldercare.registry_model import RegistryDocument, Site
from evaluation.real_homes.home import Home


@dataclass(frozen=True, slots=True)
class ExportedHome:
    registry: Path
    recording: Path
    messages: int


def registry_yaml(site: Site) -> str:
    """The site as a registry document, defaults left out (validated before it is written:
    a document the platform would refuse is an error here, not at replay)."""
    doc = {"sites": [site.model_dump(mode="json", exclude_none=True, exclude_defaults=True)]}
    RegistryDocument.model_validate(doc)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def message_of(r: Reading) -> dict[str, object]:
    """One reading as the native MQTT message a device would publish
    (`eldercare/<site>/<device>/<stream>`, its fields as the payload, its event time)."""
    return {
        "topic": f"eldercare/{r.site_id}/{r.device_id}/{r.stream.value}",
        "payload": dict(r.fields),
        "ts": r.ts,
    }


def export_home(home: Home, out: Path) -> ExportedHome:
    """Write `<out>/registry.yaml` and `<out>/recording.jsonl` for the home's real life
    (no injected incidents: every raise in a replay of it is a false alarm)."""
    out.mkdir(parents=True, exist_ok=True)
    registry = out / "registry.yaml"
    registry.write_text(registry_yaml(home.site), encoding="utf-8")
    recording = out / "recording.jsonl"
    life = sorted(home.background, key=lambda r: (r.ts, r.device_id))
    with recording.open("w", encoding="utf-8") as f:
        for r in life:
            f.write(json.dumps(message_of(r), separators=(",", ":")) + "\n")
    return ExportedHome(registry, recording, len(life))
