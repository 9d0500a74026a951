"""Ground-truth records and matching alerts against them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from device_sim.truth import TruthRecord, match_alerts, read_truth, write_truth
from eldercare.domain import AlertKind

T0 = 1_793_600_000.0


def _rec(
    kind: AlertKind, site: str, start: float, due: float, resident: str | None = "r1"
) -> TruthRecord:
    return TruthRecord(kind.value, kind, site, resident, "dev", start, due, due + 600)


def test_jsonl_round_trip(tmp_path: Path) -> None:
    records = [
        _rec(AlertKind.SOS, "hh-1", T0, T0),
        TruthRecord(
            "site_offline",
            AlertKind.SITE_OFFLINE,
            "hh-2",
            None,
            "gw",
            T0 + 5,
            T0 + 7205,
            None,
            {"rule": "2x interval"},
        ),
    ]
    path = tmp_path / "truth.jsonl"
    assert write_truth(records, path) == 2
    assert read_truth(path) == records
    assert '"start_iso"' in path.read_text()


def test_recall_delay_and_false_alarms() -> None:
    truth = [
        _rec(AlertKind.BED_EXIT_NO_RETURN, "hh-1", T0, T0 + 1800),
        _rec(AlertKind.BED_EXIT_NO_RETURN, "hh-2", T0, T0 + 1800),
        _rec(AlertKind.SOS, "hh-1", T0 + 100, T0 + 100),
        _rec(AlertKind.FALL, "hh-3", T0, T0 + 2),
    ]
    alerts: list[dict[str, Any]] = [
        {"site": "hh-1", "resident": "r1", "kind": "bed_exit_no_return", "raised_at": T0 + 1805},
        # Late beyond due + tolerance: neither a detection nor a false alarm.
        {"site": "hh-2", "resident": "r1", "kind": "bed_exit_no_return", "raised_at": T0 + 2400},
        {"site": "hh-1", "resident": "r1", "kind": "sos", "raised_at": "2026-11-02T07:33:30+00:00"},
        {"site": "hh-3", "resident": "r1", "kind": "fall", "raised_at": T0 + 3},
        # Same kind, other resident: does not count for the truth, so a false alarm.
        {"site": "hh-3", "resident": "r9", "kind": "fall", "raised_at": T0 + 4},
        {"site": "hh-4", "resident": None, "kind": "device_offline", "raised_at": T0},
    ]
    report = match_alerts(truth, alerts, home_days=10.0, tolerance_s=300.0)
    bed = report.per_kind["bed_exit_no_return"]
    assert (bed.expected, bed.detected, bed.late, bed.recall) == (2, 1, 1, 0.5)
    assert bed.delay_p50_s == 1805.0
    fall = report.per_kind["fall"]
    assert (fall.detected, fall.false_alarms, fall.delay_p50_s) == (1, 1, 3.0)
    sos = report.per_kind["sos"]
    assert sos.detected == 0  # 07:33:30Z is T0 + 4810 s: long after due T0 + 100
    assert report.false_alarms == 3  # the other resident's fall, the SOS, device_offline
    assert report.false_alarms_per_home_day == 0.3
    assert math.isnan(report.per_kind["device_offline"].recall)
    assert {r.site for r in report.unmatched_truth} == {"hh-2", "hh-1"}


def test_each_alert_detects_one_incident_and_percentiles() -> None:
    truth = [_rec(AlertKind.SOS, "hh-1", T0 + i * 1000, T0 + i * 1000) for i in range(20)]
    alerts: list[dict[str, Any]] = [
        {"site": "hh-1", "resident": "r1", "kind": "sos", "raised_at": T0 + i * 1000 + i}
        for i in range(20)
    ]
    report = match_alerts(truth, alerts, home_days=1.0)
    sos = report.per_kind["sos"]
    assert (sos.detected, sos.recall, sos.false_alarms) == (20, 1.0, 0)
    assert sos.delay_p50_s == 9.5
    assert sos.delay_p95_s is not None and abs(sos.delay_p95_s - 18.05) < 1e-9
    one_alert = match_alerts(truth[:2], alerts[:1], home_days=1.0)
    assert one_alert.per_kind["sos"].detected == 1


def test_alert_raises_counts_reactivations() -> None:
    from evaluation.platform_scenarios import alert_raises

    alert = {
        "site": "hh-1",
        "resident": "r1",
        "kind": "bed_exit_no_return",
        "raised_at": "2026-11-02T18:30:00.000Z",
        "history": [
            {"action": "raised", "event_time": "2026-11-02T18:30:00.000Z", "data": {}},
            {"action": "cleared", "event_time": "2026-11-02T18:50:00.000Z", "data": {}},
            {
                "action": "updated",
                "event_time": "2026-11-03T18:40:00.000Z",
                "data": {"change": "reactivated"},
            },
            {"action": "updated", "event_time": "2026-11-03T18:45:00.000Z", "data": {}},
        ],
    }
    raises = alert_raises([alert])
    assert [r["raised_at"] for r in raises] == [1793644200.0, 1793731200.0]
    assert {r["site"] for r in raises} == {"hh-1"}


def test_alerts_during_an_injected_outage_are_counted_apart() -> None:
    outage = TruthRecord(
        "site_offline", AlertKind.SITE_OFFLINE, "hh-1", None, "gw", T0, T0 + 7200, T0 + 12600
    )
    alerts: list[dict[str, Any]] = [
        {"site": "hh-1", "resident": None, "kind": "site_offline", "raised_at": T0 + 7200},
        # A device silent since before the outage, a resident not seen getting up.
        {"site": "hh-1", "resident": None, "kind": "device_offline", "raised_at": T0 + 400},
        {"site": "hh-1", "resident": "r1", "kind": "not_up", "raised_at": T0 + 12000},
        # After the outage (+ tolerance), or at another site: false alarms.
        {"site": "hh-1", "resident": "r1", "kind": "not_up", "raised_at": T0 + 13000},
        {"site": "hh-2", "resident": None, "kind": "device_offline", "raised_at": T0 + 400},
    ]
    report = match_alerts([outage], alerts, home_days=2.0, tolerance_s=300.0)
    assert report.per_kind["site_offline"].detected == 1
    assert report.during_outage == 2
    assert report.per_kind["not_up"].during_outage == 1
    assert report.per_kind["not_up"].false_alarms == 1
    assert report.per_kind["device_offline"].false_alarms == 1
    assert report.false_alarms == 2
    assert [(a["site"], a["kind"]) for a in report.false_alarm_alerts] == [
        ("hh-2", "device_offline"),
        ("hh-1", "not_up"),
    ]
