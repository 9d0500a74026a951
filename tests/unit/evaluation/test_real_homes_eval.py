"""`eval home` on small recordings in the van Kasteren 2010 and ARAS formats (the real
data is not needed)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io

from eldercare.domain import DeviceKind, Stream
from evaluation.real_homes import aras
from evaluation.real_homes.evaluate import evaluate_home, format_homes, together
from evaluation.real_homes.kasteren import kasteren2010_house_b, parse_house_b

HEADER = "start\tend\tsensor_id\tsensor_label\tmetafeature\tvalue\n"
# (hour, minute, sensor, seconds): one ordinary day of house B's man
DAY = [
    (7, 0, 16, 20),  # bedroom PIR: up
    (7, 2, 19, 300),  # bathroom PIR
    (7, 3, 6, 1),  # flush
    (7, 10, 28, 60),  # kitchen PIR
    (7, 11, 3, 20),  # fridge
    (8, 0, 7, 5),  # out
    (17, 0, 7, 5),  # back
    (17, 1, 28, 30),  # kitchen
    (17, 30, 22, 3 * 3600),  # study chair: an evening at the desk
    (20, 35, 28, 30),  # kitchen
    (20, 40, 20, 3600),  # piano stool
    (22, 0, 19, 120),  # bathroom
    (22, 5, 16, 30),  # bedroom
]


def _write_house_b(path: Path, days: int, day_rows: list[tuple[int, int, int, int]] = DAY) -> Path:
    fmt = "%Y-%m-%d %H:%M:%S"
    lines = [HEADER]
    base = datetime(2009, 7, 21)
    for d in range(days):
        day = base + timedelta(days=d)
        rows = [*day_rows, (22, 10, 13, 9 * 3600 - 60), (22, 10, 12, 9 * 3600 - 60)]  # mats
        for hour, minute, sensor, seconds in rows:
            start = day.replace(hour=hour, minute=minute)
            end = start + timedelta(seconds=seconds)
            lines.append(f"{start.strftime(fmt)}\t{end.strftime(fmt)}\t{sensor}\tx\t\t1\n")
    path.write_text(HEADER + "".join(sorted(lines[1:], key=lambda s: s[:19])))
    return path


def test_house_b_rows_become_firings_and_devices_of_their_kind(tmp_path: Path) -> None:
    home = kasteren2010_house_b(_write_house_b(tmp_path / "houseB_sensors.tsv", 2))
    kinds = {d.id: d.kind for d in home.site.devices}
    assert kinds["piano-stool"] == DeviceKind.SEAT and kinds["bed-mat-left"] == DeviceKind.BED
    stool = [r for r in home.background if r.device_id == "piano-stool"]
    assert [(r.stream, r.fields["occupied"]) for r in stool[:2]] == [
        (Stream.OCCUPANCY, True),
        (Stream.OCCUPANCY, False),
    ]
    assert stool[1].ts - stool[0].ts == 3600
    flushes = [r for r in home.background if r.stream == Stream.FLUSH]
    assert len(flushes) == 2  # a flush is one event, no "off"


def test_house_b_unknown_sensor_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "houseB_sensors.tsv"
    path.write_text(HEADER + "2009-07-21 10:00:00\t2009-07-21 10:00:05\t99\tx\t\t1\n")
    with pytest.raises(ValueError, match="unknown sensor id 99"):
        parse_house_b(path)


def test_aras_runs_debounced_into_firings() -> None:
    row = np.zeros(100, dtype=np.uint8)
    row[10:20] = 1
    row[25:30] = 1  # 5 s off: the same firing (shifting on the couch)
    row[50:52] = 1  # 20 s off: a new one
    row[99] = 1  # on at the end of the recording
    firings = aras.firings_of(np.stack([row]), ["couch"], 1000.0)
    assert [(f.start - 1000, f.end - 1000) for f in firings] == [(10, 30), (50, 52), (99, 100)]


def test_aras_wrong_shape_is_an_error() -> None:
    with pytest.raises(ValueError, match="expected 2 sensor rows"):
        aras.firings_of(np.zeros((3, 10), dtype=np.uint8), ["a", "b"], 0.0)


def test_aras_mat_file_loads_as_a_two_resident_home(tmp_path: Path) -> None:
    obs = np.zeros((20, 2 * 86400), dtype=np.uint8)
    names = [s[0] for s in aras.HOUSE_B]
    for day in range(2):
        base = day * 86400
        obs[names.index("bed-mat-1"), base : base + 7 * 3600] = 1
        obs[names.index("armchair"), base + 18 * 3600 : base + 21 * 3600] = 1
        obs[names.index("fridge"), base + 8 * 3600 : base + 8 * 3600 + 20] = 1
    struct = {
        "observations": obs,
        "labels": np.zeros(obs.shape[1], dtype=np.uint8),
        "labels2": np.zeros(obs.shape[1], dtype=np.uint8),
    }
    scipy.io.savemat(tmp_path / "HouseB.mat", {"ArasDataset": struct})
    home = aras.load(tmp_path, "B")
    assert len(home.site.residents) == 2
    bed = home.device("bed-mat-1")
    assert bed.kind == DeviceKind.BED and bed.resident == aras.R1
    armchair = [r for r in home.background if r.device_id == "armchair"]
    assert len(armchair) == 4 and armchair[1].ts - armchair[0].ts == 3 * 3600


@pytest.fixture(scope="module")
def house_b_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    path = _write_house_b(tmp_path_factory.mktemp("houseB") / "houseB_sensors.tsv", 4)
    return evaluate_home(kasteren2010_house_b(path))


def test_regular_life_with_seat_evenings_raises_nothing(house_b_report: dict[str, Any]) -> None:
    fa = house_b_report["false_alarms"]
    assert fa["total"] == 0, fa["alerts"]


def test_every_incident_is_caught_within_its_delay(house_b_report: dict[str, Any]) -> None:
    for name, result in house_b_report["incidents"].items():
        assert result["recall"] == 1.0, (name, result)
    assert house_b_report["incidents"]["bed_exit"]["delay_minutes"]["max"] == 30.0
    assert house_b_report["incidents"]["bathroom_night"]["delay_minutes"]["max"] == 15.0


def test_checkpointed_replays_equal_replays_from_the_start(
    tmp_path: Path, house_b_report: dict[str, Any]
) -> None:
    path = _write_house_b(tmp_path / "houseB_sensors.tsv", 4)
    slow = evaluate_home(kasteren2010_house_b(path), checkpoints=False)
    assert slow == house_b_report


def test_report_per_home_and_together(house_b_report: dict[str, Any]) -> None:
    both = together([house_b_report, house_b_report])
    assert both["all"]["home_days"] == 2 * house_b_report["home_days"]
    assert "all homes together" in format_homes([house_b_report, house_b_report])


def test_an_incident_with_no_reading_after_its_cut_is_judged_from_the_checkpoint(
    tmp_path: Path,
) -> None:
    """A lie from the real last movement with nothing after it for 12 h: the restored
    detectors must still fire (they were never built when no reading followed)."""
    at_home = [row for row in DAY if row[2] != 7] + [(14, 30, 28, 30)]  # no outing; 14:30
    path = _write_house_b(tmp_path / "houseB_sensors.tsv", 3, at_home)
    home = kasteren2010_house_b(path)
    fast = evaluate_home(home)
    slow = evaluate_home(home, checkpoints=False)
    assert fast["incidents"] == slow["incidents"]
    lies = fast["incidents"].get("long_lie_at_home")
    assert lies is not None and lies["caught"] == lies["injected"] > 0
