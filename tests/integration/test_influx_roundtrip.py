"""Line protocol against the real InfluxDB: what we write is what we read back."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eldercare.domain import Reading, Stream
from eldercare.influx import (
    InfluxClient,
    InfluxError,
    LineProtocolError,
    encode_line,
    escape_key,
    escape_measurement,
    escape_tag_value,
    format_field_value,
    point_for_reading,
    quote_ident,
    reading_fields,
    ts_to_ns,
)

pytestmark = pytest.mark.integration

_db_counter = itertools.count()


def _writable(fn, value: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        fn(value)
    except LineProtocolError:
        return False
    return True


names = st.text(min_size=1, max_size=20)
tag_values = st.text(min_size=1, max_size=30)
field_strings = st.text(max_size=60)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    measurement=names,
    tags=st.dictionaries(names, tag_values, max_size=3),
    field_key=names,
    text=field_strings,
    number=st.floats(allow_nan=False, allow_infinity=False),
    integer=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    flag=st.booleans(),
)
async def test_arbitrary_names_and_values_round_trip(
    influx_url: str,
    measurement: str,
    tags: dict[str, str],
    field_key: str,
    text: str,
    number: float,
    integer: int,
    flag: bool,
) -> None:
    # Names the encoder refuses must be refused loudly, never written altered.
    if not _writable(escape_measurement, measurement):
        with pytest.raises(LineProtocolError):
            encode_line(measurement, {}, {"v": 1})
        return
    if not _writable(escape_key, field_key) or any(
        not _writable(escape_key, k) or not _writable(escape_tag_value, v) for k, v in tags.items()
    ):
        with pytest.raises(LineProtocolError):
            encode_line(measurement, tags, {field_key: text})
        return
    if "\r" in text:
        with pytest.raises(LineProtocolError):
            format_field_value(text)
        return
    # Field and tag keys must differ from each other to be told apart on the way back.
    fields: dict[str, bool | int | float | str] = {
        f"{field_key}": text,
        f"{field_key}.f": number,
        f"{field_key}.i": integer,
        f"{field_key}.b": flag,
    }
    if set(fields) & set(tags):
        return
    db = f"roundtrip_{next(_db_counter)}"
    ts = 1_700_000_000_123_456_000
    async with InfluxClient(influx_url) as client:
        await client.query(f"CREATE DATABASE {quote_ident(db)}")
        try:
            await client.write([encode_line(measurement, tags, fields, ts)], db)
            # A regex over measurements avoids trusting our own InfluxQL quoting here.
            rows = await client.query("SELECT * FROM /.*/ GROUP BY *", db)
        finally:
            await client.query(f"DROP DATABASE {quote_ident(db)}")
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["_measurement"] == measurement
    assert row["_tags"] == tags
    assert row["time"] == ts
    assert row[field_key] == text
    assert row[f"{field_key}.i"] == integer
    assert row[f"{field_key}.b"] is flag
    assert math.isclose(row[f"{field_key}.f"], number, rel_tol=0, abs_tol=0) or (
        row[f"{field_key}.f"] == number
    )


def test_refuses_what_line_protocol_cannot_carry() -> None:
    for bad in (float("nan"), float("inf"), -float("inf"), 2**63, object()):
        with pytest.raises(LineProtocolError):
            format_field_value(bad)  # type: ignore[arg-type]
    for bad_name in ("", "a\nb", "ends\\", "odd\\,comma", "#comment"):
        with pytest.raises(LineProtocolError):
            escape_measurement(bad_name)
    for bad_key in ("time", "_measurement", "a\\=b", ""):
        with pytest.raises(LineProtocolError):
            escape_key(bad_key)
    assert escape_tag_value("a b,c=d") == "a\\ b\\,c\\=d"
    assert escape_tag_value("even\\\\") == "even\\\\"
    assert format_field_value('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    assert format_field_value(3) == "3i" and format_field_value(True) == "true"


def test_point_for_reading_follows_the_schema() -> None:
    reading = Reading(
        site_id="hh-1",
        device_id="bed-1",
        stream=Stream.VITALS,
        ts=1_700_000_000.123456,
        fields={"heart_rate": 61.0, "breathing_rate": 14.5, "seq": 7},
        room_id="bedroom",
        resident_id="zhang",
        source="native",
    )
    line = point_for_reading(reading)
    assert line == (
        "vitals,device=bed-1,site=hh-1,room=bedroom,resident=zhang,source=native "
        f"heart_rate=61.0,breathing_rate=14.5,seq=7i {ts_to_ns(reading.ts)}"
    )
    assert ts_to_ns(1_700_000_000.123456) == 1_700_000_000_123_456_000
    for bad in (float("nan"), float("inf"), 2**64):
        with pytest.raises(LineProtocolError):
            point_for_reading(
                Reading("hh-1", "bed-1", Stream.VITALS, 1.0, {"heart_rate": bad}, room_id="b")
            )


def _parsed(line: str) -> tuple[str, set[str], set[str], str]:
    head, fields, ts = line.rsplit(" ", 2)
    measurement, *tags = head.split(",")
    return measurement, set(tags), set(fields.split(",")), ts


@pytest.mark.parametrize(
    ("stream", "fields"),
    [
        (Stream.HEARTBEAT, {}),
        (Stream.HEARTBEAT, {"seq": 12}),
        (Stream.HEARTBEAT, {"alive": False, "seq": 3}),
        (Stream.VITALS, {"heart_rate": 61.0, "breath_rate": -2, "seq": 2**63 - 1}),
        (Stream.CONTACT, {"open": True, "note": 'say"hi",\\o/'}),
        (Stream.BATTERY, {"percent": 0.1 + 0.2, "voltage": 3}),
        (Stream.ACCEL, {"rate_hz": 25.0, "x": (0.0, 3.0), "y": (0.0, 0.0), "z": (1.0, 4.0)}),
    ],
)
def test_point_for_reading_is_the_schema_line_built_in_one_pass(
    stream: Stream, fields: dict[str, object]
) -> None:
    reading = Reading(
        "hh-1", "dev-1", stream, 1_700_000_000.5, fields,  # type: ignore[arg-type]
        room_id="bedroom", resident_id="zhang", source="z2m",
    )  # fmt: skip
    tags = {
        "site": reading.site_id,
        "device": reading.device_id,
        "room": reading.room_id,
        "resident": reading.resident_id,
        "source": reading.source,
    }
    reference = encode_line(stream.value, tags, reading_fields(reading), ts_to_ns(reading.ts))
    assert _parsed(point_for_reading(reading)) == _parsed(reference)


def test_accel_is_summarised() -> None:
    reading = Reading(
        site_id="hh-1",
        device_id="watch",
        stream=Stream.ACCEL,
        ts=1_700_000_000.0,
        fields={"rate_hz": 25.0, "x": (0.0, 3.0), "y": (0.0, 0.0), "z": (1.0, 4.0)},
    )
    line = point_for_reading(reading)
    assert line.startswith("accel,device=watch,site=hh-1,source=native ")
    assert "n=2i,peak_g=5.0,min_g=1.0,rate_hz=25.0" in line


async def test_point_for_reading_lands_in_influx(influx_url: str) -> None:
    reading = Reading(
        site_id="hh-1",
        device_id="door-1",
        stream=Stream.CONTACT,
        ts=1_700_000_123.5,
        fields={"open": True},
        room_id="entrance",
    )
    async with InfluxClient(influx_url) as client:
        await client.query('CREATE DATABASE "lands"')
        await client.write([point_for_reading(reading)], "lands")
        rows = await client.query(
            "SELECT \"open\" FROM contact WHERE device = 'door-1' GROUP BY *", "lands"
        )
        await client.query('DROP DATABASE "lands"')
    assert rows == [
        {
            "time": ts_to_ns(reading.ts),
            "open": True,
            "_measurement": "contact",
            "_tags": {"device": "door-1", "site": "hh-1", "room": "entrance", "source": "native"},
        }
    ]


async def test_refused_write_is_not_retryable_and_outage_is(influx_url: str) -> None:
    async with InfluxClient(influx_url) as client:
        assert await client.ping()
        with pytest.raises(InfluxError) as refused:
            await client.write(["not line protocol"], "eldercare")
        assert refused.value.retryable is False
    async with InfluxClient("http://127.0.0.1:9", timeout=1) as down:
        assert not await down.ping()
        with pytest.raises(InfluxError) as outage:
            await down.write(["m v=1"], "eldercare")
        assert outage.value.retryable is True
