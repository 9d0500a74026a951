"""The local webhook that stands in for a phone (bench latency, `make demo`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import apprise
import pytest

from eldercare_app.webhook_receiver import WebhookReceiver


def test_apprise_post_is_kept_and_journaled(tmp_path: Path) -> None:
    journal = tmp_path / "notifications.jsonl"
    with WebhookReceiver(journal=journal) as inbox:
        client = apprise.Apprise()
        assert client.add(f"{inbox.url}/hh-0001/hh-0001-c1")
        assert client.notify(title="【紧急】一键呼叫：周树森", body="卧室 10:12 一键呼叫")
        assert inbox.first("hh-0001/hh-0001-c1", 0.0, "一键呼叫") is not None
        assert inbox.first("hh-0001/hh-0001-c2", 0.0, "一键呼叫") is None
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["to"] == "hh-0001/hh-0001-c1"
    assert lines[0]["title"] == "【紧急】一键呼叫：周树森"
    assert lines[0]["message"] == "卧室 10:12 一键呼叫"


def test_a_post_that_is_not_json_is_refused_and_not_kept(tmp_path: Path) -> None:
    journal = tmp_path / "notifications.jsonl"
    with WebhookReceiver(journal=journal) as inbox:
        req = urllib.request.Request(
            f"http://127.0.0.1:{inbox.port}/x", data=b"not json", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=5)
        assert err.value.code == 400
        assert inbox.arrivals == []
    assert not journal.exists()
