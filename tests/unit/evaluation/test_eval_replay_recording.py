"""`eldercare eval replay`: reading a recording (the replay through the platform:
tests/e2e/test_eval_replay.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.replay import RecordingError, read_recording


def _write(path: Path, lines: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path


def test_reads_topics_payloads_and_event_times_in_order(tmp_path: Path) -> None:
    rec = _write(
        tmp_path / "r.jsonl",
        [
            {"topic": "zigbee2mqtt/pir", "payload": {"occupancy": True}, "ts": 200.0},
            {"topic": "eldercare/s/d/motion", "payload": {"motion": True}, "ts": 100.0},
            {"topic": "zigbee2mqtt/pir/availability", "payload": "online"},
        ],
    )
    out = read_recording(rec)
    # A message without a time keeps the time of the line before it (100 s here).
    assert [m.topic for m in out] == [
        "eldercare/s/d/motion",
        "zigbee2mqtt/pir/availability",
        "zigbee2mqtt/pir",
    ]
    assert json.loads(out[0].payload) == {"motion": True, "ts": 100.0}
    assert json.loads(out[2].payload)["last_seen"].startswith("1970-01-01T00:03:20")
    assert out[1].payload == b"online"


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    rec = tmp_path / "r.jsonl"
    rec.write_text('{"topic": "a", "payload": {}}\nnot json\n', encoding="utf-8")
    with pytest.raises(RecordingError, match=r"r.jsonl:2: not JSON"):
        read_recording(rec)
