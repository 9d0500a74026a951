"""Evidence rendered from structured parts: the detectors' English summaries become
i18n phrases with values, and every phrase has zh-CN and English strings."""

from __future__ import annotations

import re

import pytest

from detectors.settings import VitalsSettings
from detectors.vitals import _problems
from eldercare.domain import Reading, Stream
from eldercare.evidence import ENGLISH, EvidenceCode, Observation, describe, seen
from gateway.evidence_text import _FIXED, observed_phrases, phrases
from gateway.i18n import catalogue

SUMMARIES = {
    "SOS button pressed": [("sos_pressed", {})],
    "radar reports maybe_fall": [("radar_maybe_fall", {})],
    "bed empty": [("bed_empty", {})],
    "battery at 12%": [("battery", {"percent": 12.0})],
    "impact 3.4 g": [("impact", {"g": 3.4})],
    "posture changed 75°, then still (0.05 g) for 20 s": [
        ("posture_still", {"deg": 75.0, "g": 0.05, "s": 20.0})
    ],
    "upright and moving again for 30 s": [("upright_again", {"s": 30.0})],
}


@pytest.mark.parametrize("summary", sorted(SUMMARIES))
def test_known_summaries_become_phrases(summary: str) -> None:
    got = [(p.key, p.values) for p in phrases(summary)]
    assert got == SUMMARIES[summary]


def test_vitals_summaries_as_the_detector_writes_them() -> None:
    reading = Reading(
        "hh", "bed-1", Stream.VITALS, 0.0, {"heart_rate": 131.0, "breathing_rate": 6.0}
    )
    problems, _ = _problems(reading, VitalsSettings())
    got = phrases("; ".join(p.english() for p in problems))
    assert [p.key for p in got] == ["vital_high", "vital_low"]
    assert got[0].values["measure"] == "heart_rate" and got[0].values["value"] == 131.0
    assert got[1].values["measure"] == "breathing_rate" and got[1].values["unit"] == "/min"


def test_unknown_text_is_kept_whole() -> None:
    assert phrases("something new a detector says") == []
    # One unknown part: the whole summary is shown rather than half of it.
    assert phrases("bed empty; something new") == []


def test_every_phrase_has_both_languages() -> None:
    strings = catalogue()
    keys = set(_FIXED.values()) | {
        "battery", "vital_high", "vital_low", "impact", "posture_still", "upright_again"
    }  # fmt: skip
    for lang in ("zh-CN", "en"):
        for key in keys:
            text = strings[lang][f"evidence.{key}"]
            assert text, (lang, key)
            if lang == "zh-CN":  # no English left in the Chinese text, placeholders aside
                assert not re.search(r"[A-Za-z]{2,}", re.sub(r"\{\w+\}", "", text)), key
        for kind in ("motion", "door", "bed", "fall_radar", "sos_button", "wearable"):
            assert strings[lang][f"device_kind.{kind}"]


def test_every_evidence_code_has_both_languages_and_an_english_summary() -> None:
    strings = catalogue()
    for code in EvidenceCode:
        for lang in ("zh-CN", "en"):
            assert strings[lang][f"evidence.{code}"], (lang, code)
        assert ENGLISH[code], code


def test_structured_evidence_renders_without_reading_the_summary() -> None:
    reading = Reading("hh", "bed-1", Stream.VITALS, 0.0, {"heart_rate": 131.0})
    problems, _ = _problems(reading, VitalsSettings())
    stored = [{"code": str(o.code), "params": dict(o.params)} for o in problems]
    got = observed_phrases(stored)
    assert [(p.key, p.values) for p in got] == [
        ("vital_high", {"measure": "heart_rate", "value": 131.0, "unit": "bpm", "limit": 120.0})
    ]
    assert describe(problems) == "heart_rate 131bpm > 120"


@pytest.mark.parametrize(
    ("observation", "summary"),
    [
        (seen(EvidenceCode.SOS_PRESSED), "SOS button pressed"),
        (seen(EvidenceCode.RADAR_MAYBE_FALL), "radar reports maybe_fall"),
        (seen(EvidenceCode.BATTERY, percent=12), "battery at 12%"),
        (seen(EvidenceCode.IMPACT, g=3.4), "impact 3.4 g"),
        (
            seen(EvidenceCode.POSTURE_STILL, deg=75, g=0.05, s=20.0),
            "posture changed 75°, then still (0.05 g) for 20 s",
        ),
        (seen(EvidenceCode.UPRIGHT_AGAIN, s=30), "upright and moving again for 30 s"),
    ],
)
def test_the_english_summaries_are_those_the_detectors_wrote_before_codes(
    observation: Observation, summary: str
) -> None:
    # Older readers (notifications, logs, the parser of stored evidence) rely on them.
    assert describe([observation]) == summary
    assert [(p.key, p.values) for p in phrases(summary)] == SUMMARIES[summary]
