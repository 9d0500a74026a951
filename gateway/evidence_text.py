"""Evidence in the reader's language.

Detectors say what a sensor saw as observations: a code (`eldercare.evidence.
EvidenceCode`) and its values. The console renders evidence from structured parts: the
room's name and the device's kind from the registry, and one phrase per observation,
its i18n key `evidence.<code>` filled with the values (`observed_phrases`).

Evidence stored before detectors said codes has only its English summary ("bed empty",
"battery at 12%"); `phrases` reads those back with the patterns below, which mirror
what the detectors wrote then (tests/unit/gateway/test_gateway_evidence.py runs each
through). A summary no pattern knows stays as it is: the page shows the English text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

Values = dict[str, str | float]


class EvidencePhrase(BaseModel):
    key: str = Field(description="i18n key under evidence.*, e.g. battery")
    values: Values = Field(default_factory=dict, description="numbers and names to fill in")


def observed_phrases(observations: list[dict[str, Any]]) -> list[EvidencePhrase]:
    """Stored observations (`{"code", "params"}`) as phrases, one each."""
    return [
        EvidencePhrase(key=str(o["code"]), values=dict(o.get("params") or {})) for o in observations
    ]


def _num(text: str) -> float:
    return float(text)


_FIXED: dict[str, str] = {
    "SOS button pressed": "sos_pressed",
    "radar reports fall": "radar_fall",
    "radar reports maybe_fall": "radar_maybe_fall",
    "movement": "movement",
    "movement in another room": "movement_elsewhere",
    "in bed": "in_bed",
    "bed empty": "bed_empty",
    "activity in bathroom": "bathroom_activity",
    "outer door used": "door_used",
    "back home": "back_home",
    "device reported offline": "device_offline",
    "no message since": "silent_since",
    "never reported": "never_reported",
    "message received": "message_received",
    "tamper switch triggered": "tamper",
    "back in range": "vitals_ok",
    "no measurement": "no_measurement",
    "smoke alarm sounding": "smoke_alarm",
    "gas alarm sounding": "gas_alarm",
    "carbon monoxide alarm sounding": "co_alarm",
    "water on the floor": "water_on_floor",
    "indoor temperature back to normal": "temperature_normal",
    "battery low (device flag)": "battery_flag",
}

_PATTERNS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], EvidencePhrase]]] = [
    (
        re.compile(r"battery at (\d+(?:\.\d+)?)%"),
        lambda m: EvidencePhrase(key="battery", values={"percent": _num(m[1])}),
    ),
    (
        re.compile(r"(heart_rate|breathing_rate) (\d+(?:\.\d+)?)(bpm|/min) ([<>]) (\d+(?:\.\d+)?)"),
        lambda m: EvidencePhrase(
            key="vital_high" if m[4] == ">" else "vital_low",
            values={"measure": m[1], "value": _num(m[2]), "unit": m[3], "limit": _num(m[5])},
        ),
    ),
    (
        re.compile(r"impact (\d+(?:\.\d+)?) g"),
        lambda m: EvidencePhrase(key="impact", values={"g": _num(m[1])}),
    ),
    (
        re.compile(
            r"posture changed (\d+(?:\.\d+)?)°, then still \((\d+(?:\.\d+)?) g\) "
            r"for (\d+(?:\.\d+)?) s"
        ),
        lambda m: EvidencePhrase(
            key="posture_still", values={"deg": _num(m[1]), "g": _num(m[2]), "s": _num(m[3])}
        ),
    ),
    (
        re.compile(r"indoor (-?\d+(?:\.\d+)?) °C"),
        lambda m: EvidencePhrase(key="indoor_celsius", values={"celsius": _num(m[1])}),
    ),
    (
        re.compile(r"upright and moving again for (\d+(?:\.\d+)?) s"),
        lambda m: EvidencePhrase(key="upright_again", values={"s": _num(m[1])}),
    ),
]


def _phrase(part: str) -> EvidencePhrase | None:
    part = part.strip()
    if part in _FIXED:
        return EvidencePhrase(key=_FIXED[part])
    for pattern, build in _PATTERNS:
        match = pattern.fullmatch(part)
        if match:
            return build(match)
    return None


def phrases(summary: str) -> list[EvidencePhrase]:
    """The summary's phrases ("; "-separated), or [] if any part is unknown, so that
    nothing a detector said is ever dropped from the display."""
    out = []
    for part in summary.split(";"):
        phrase = _phrase(part)
        if phrase is None:
            return []
        out.append(phrase)
    return out
