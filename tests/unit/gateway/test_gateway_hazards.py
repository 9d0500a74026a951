"""Hazards on the pages: their own words, icon and what to do, in both languages; their
evidence in the reader's language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from detectors.hazard_alarm import CarbonMonoxideRule, GasRule, SmokeRule, WaterLeakRule
from eldercare.domain import HAZARD_KINDS, AlertKind
from eldercare.evidence import EvidenceCode, Observation, seen
from gateway.evidence_text import observed_phrases, phrases
from gateway.i18n import catalogue

STATIC = Path(__file__).resolve().parents[3] / "gateway" / "static"


def test_every_hazard_has_its_words_and_advice_in_both_languages() -> None:
    strings = catalogue()
    for lang in ("zh-CN", "en"):
        words = {strings[lang][f"kind.{k.value}"] for k in HAZARD_KINDS}
        others = {strings[lang][f"kind.{k.value}"] for k in (AlertKind.FALL, AlertKind.SOS)}
        assert len(words) == len(HAZARD_KINDS) and not words & others
        for kind in HAZARD_KINDS:
            assert strings[lang][f"hazard.advice.{kind.value}"]
        assert f"hazard.advice.{AlertKind.FALL.value}" not in strings[lang]
        assert strings[lang]["hazard.badge"] and strings[lang]["hazard.todo"]


def test_the_pages_have_an_icon_for_every_hazard_and_none_for_falls_or_sos() -> None:
    script = (STATIC / "common.js").read_text(encoding="utf-8")
    block = re.search(r"HAZARD_ICONS = \{(.*?)\};", script, re.S)
    assert block is not None
    kinds = set(re.findall(r"(\w+): \"", block.group(1)))
    assert kinds == {k.value for k in HAZARD_KINDS}
    for page in ("console.js", "family.js"):
        assert "EC.hazardMark(" in (STATIC / page).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("summary", "key", "values"),
    [
        (seen(SmokeRule.alarm_seen).english(), "smoke_alarm", {}),
        (seen(GasRule.alarm_seen).english(), "gas_alarm", {}),
        (seen(CarbonMonoxideRule.alarm_seen).english(), "co_alarm", {}),
        (seen(WaterLeakRule.alarm_seen).english(), "water_on_floor", {}),
        ("indoor 31.5 °C", "indoor_celsius", {"celsius": 31.5}),
        ("indoor -2.0 °C", "indoor_celsius", {"celsius": -2.0}),
        ("indoor temperature back to normal", "temperature_normal", {}),
        ("battery low (device flag)", "battery_flag", {}),
    ],
)
def test_hazard_evidence_in_the_readers_language(
    summary: str, key: str, values: dict[str, float]
) -> None:
    [phrase] = phrases(summary)
    assert (phrase.key, phrase.values) == (key, values)
    strings = catalogue()
    assert strings["zh-CN"][f"evidence.{key}"] != strings["en"][f"evidence.{key}"]


@pytest.mark.parametrize(
    ("observation", "summary"),
    [
        (seen(SmokeRule.alarm_seen), "smoke alarm sounding"),
        (seen(GasRule.alarm_seen), "gas alarm sounding"),
        (seen(CarbonMonoxideRule.alarm_seen), "carbon monoxide alarm sounding"),
        (seen(WaterLeakRule.alarm_seen), "water on the floor"),
        (seen(EvidenceCode.INDOOR_CELSIUS, celsius=31.5), "indoor 31.5 °C"),
        (seen(EvidenceCode.INDOOR_CELSIUS, celsius=-2.0), "indoor -2.0 °C"),
        (seen(EvidenceCode.TEMPERATURE_NORMAL), "indoor temperature back to normal"),
        (seen(EvidenceCode.BATTERY_FLAG), "battery low (device flag)"),
    ],
)
def test_hazard_observations_render_as_the_summary_reads(
    observation: Observation, summary: str
) -> None:
    """What the hazard rules say as codes renders to the same phrase as their English
    summary, in both languages."""
    stored = [{"code": str(observation.code), "params": dict(observation.params)}]
    [structured] = observed_phrases(stored)
    [parsed] = phrases(summary)
    assert observation.english() == summary
    assert (structured.key, structured.values) == (parsed.key, parsed.values)
    strings = catalogue()
    for lang in ("zh-CN", "en"):
        assert strings[lang][f"evidence.{structured.key}"]
