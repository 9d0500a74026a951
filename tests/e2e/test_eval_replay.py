"""`eldercare eval replay`: a recording through the whole platform on the event clock
(reading the recording: tests/unit/evaluation/test_eval_replay_recording.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from evaluation.replay import replay_recording

REGISTRY = """
sites:
  - id: replay-home
    kind: home
    name: Replay home
    organisation: Test/Replay
    timezone: Europe/Amsterdam
    rooms:
      - {id: kitchen, kind: kitchen}
      - {id: bedroom, kind: bedroom}
    residents:
      - {id: res-1, name: Test resident, room: bedroom}
    devices:
      - {id: pir-kitchen, kind: motion, room: kitchen}
      - {id: sos-1, kind: sos_button, room: bedroom, resident: res-1}
"""


def _write(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


@pytest.mark.integration
def test_a_year_old_recording_raises_what_it_holds(tmp_path: Path) -> None:
    start = time.time() - 365 * 86400
    topic = "eldercare/replay-home/{}/{}"
    lines: list[dict[str, object]] = [
        {"topic": topic.format("pir-kitchen", "motion"), "payload": {"motion": v}, "ts": start + i}
        for i, v in enumerate([True, False, True])
    ]
    lines.append(
        {"topic": topic.format("sos-1", "sos"), "payload": {"pressed": True}, "ts": start + 600}
    )
    lines.append(
        {"topic": topic.format("pir-kitchen", "motion"), "payload": {"motion": True},
         "ts": start + 1200}
    )  # fmt: skip
    rec = _write(tmp_path / "rec.jsonl", lines)
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    report = replay_recording(rec, registry, tmp_path / "work", progress=lambda _: None)
    assert report["ok"], report
    assert report["quarantined"] == {} and report["unregistered"] == 0
    assert [(r["kind"], round(r["raised_at"] - start)) for r in report["raises"]] == [("sos", 600)]
    assert report["false_alarms"]["by_kind"] == {"sos": 1}


@pytest.mark.integration
def test_a_message_from_an_unregistered_device_fails_the_evaluation(tmp_path: Path) -> None:
    start = time.time() - 2 * 86400
    rec = _write(
        tmp_path / "rec.jsonl",
        [
            {
                "topic": "eldercare/replay-home/pir-kitchen/motion",
                "payload": {"motion": True},
                "ts": start,
            },
            {"topic": "eldercare/replay-home/pir-attic/motion", "payload": {"motion": True}},
        ],
    )
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY, encoding="utf-8")
    report = replay_recording(rec, registry, tmp_path / "work", progress=lambda _: None)
    assert not report["ok"]
    assert report["unregistered"] == 1 and report["quarantined"] == {}
