"""The process-wide metrics registry and its Prometheus text."""

from __future__ import annotations

import pytest

from eldercare.metrics import Registry


def test_counters_and_gauges_render_as_prometheus_text() -> None:
    reg = Registry()
    received = reg.counter("ingest_received_total", "MQTT messages received")
    quarantined = reg.counter("ingest_quarantined_total", "rejected messages", ["cause"])
    lag = reg.gauge("ingest_lag_seconds", "wall time minus newest event time")
    received.inc(3)
    quarantined.inc(cause="bad_json")
    quarantined.inc(2, cause='we"ird')
    lag.set(0.25)
    assert reg.counter("ingest_received_total", "again") is received
    text = reg.render()
    assert "# TYPE eldercare_ingest_received_total counter\n" in text
    assert "\neldercare_ingest_received_total 3\n" in text
    assert 'eldercare_ingest_quarantined_total{cause="bad_json"} 1' in text
    assert 'eldercare_ingest_quarantined_total{cause="we\\"ird"} 2' in text
    assert "eldercare_ingest_lag_seconds 0.25" in text
    assert quarantined.value(cause="bad_json") == 1


def test_misuse_is_refused() -> None:
    reg = Registry()
    c = reg.counter("c_total", "c", ["cause"])
    with pytest.raises(ValueError):
        c.inc(-1, cause="x")
    with pytest.raises(ValueError):
        c.inc()  # a labelled counter needs its labels
    with pytest.raises(ValueError):
        reg.gauge("c_total", "same name, other type")
