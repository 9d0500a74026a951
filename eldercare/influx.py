"""InfluxDB line protocol and a small async client for the v1 HTTP API.

The v1 API (`/write`, `/query` with InfluxQL, `/ping`) is what InfluxDB 1.x
serves natively and 2.x/3.x serve for compatibility, so one client covers all
three: a token (`Authorization: Token …`) for 2.x/3.x, user and password for 1.x.

Line protocol escaping follows the 1.x parser (which 2.x/3.x share):

- measurement: `,` and space are escaped with a backslash;
- tag keys, tag values, field keys: `,`, `=` and space are escaped;
- string field values: `"` and `\\` are escaped inside double quotes.

The parser never unescapes a backslash itself, so a name or tag value with an
odd run of backslashes right before a character that needs escaping (or at its
end) cannot be written faithfully; neither can one with a line break. Those,
a leading tab or NUL in a name (the parser skips them), empty names and the
reserved key `time` raise `LineProtocolError` instead of
silently writing something else. `point_for_reading` encodes a `Reading`
exactly as docs/influx-schema.md describes.
"""

from __future__ import annotations

import gzip
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpx

from eldercare.domain import FieldValue, Reading, Stream
from eldercare.errors import EldercareError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
RESERVED_KEYS = frozenset({"time"})
RESERVED_PREFIX = "_"  # InfluxDB 2.x/3.x reserve `_measurement`, `_field`…; so do our query rows


class LineProtocolError(EldercareError, ValueError):
    """A value that line protocol cannot carry faithfully."""


class InfluxError(EldercareError, RuntimeError):
    """InfluxDB refused a request. `retryable` tells a writer whether to try again."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


# --- escaping -----------------------------------------------------------------

_MEASUREMENT_SPECIAL = re.compile(r"[, ]")
_KEY_SPECIAL = re.compile(r"[,= ]")
_FORBIDDEN = re.compile(r"[\n\r]")
_SKIPPED_LEADING = "\t\x00"


def _check_backslashes(text: str, special: str, what: str) -> None:
    """Refuse text whose backslashes would pair with our escapes or the separator after it."""
    if "\\" not in text:
        return
    run = 0
    for ch in text:
        if ch == "\\":
            run += 1
            continue
        if run % 2 == 1 and ch in special:
            raise LineProtocolError(f"{what} {text!r}: odd backslash run before {ch!r}")
        run = 0
    if run % 2 == 1:
        raise LineProtocolError(f"{what} {text!r} ends with an odd backslash run")


def _check_text(text: str, what: str) -> None:
    if not text:
        raise LineProtocolError(f"empty {what}")
    if _FORBIDDEN.search(text):
        raise LineProtocolError(f"{what} {text!r} contains a line break")


def _check_name(text: str, what: str) -> None:
    _check_text(text, what)
    if text[0] in _SKIPPED_LEADING:
        # The parser skips tabs and NULs before a measurement or field key.
        raise LineProtocolError(f"{what} {text!r} starts with a tab or NUL")


def escape_measurement(name: str) -> str:
    _check_name(name, "measurement")
    if name.startswith("#"):
        raise LineProtocolError(f"measurement {name!r}: a leading '#' makes a comment line")
    _check_backslashes(name, ", ", "measurement")
    return _MEASUREMENT_SPECIAL.sub(lambda m: "\\" + m.group(0), name)


def escape_key(name: str) -> str:
    """A tag key or field key."""
    _check_name(name, "key")
    if name in RESERVED_KEYS or name.startswith(RESERVED_PREFIX):
        raise LineProtocolError(f"key {name!r} is reserved")
    _check_backslashes(name, ",= ", "key")
    return _KEY_SPECIAL.sub(lambda m: "\\" + m.group(0), name)


def escape_tag_value(value: str) -> str:
    _check_text(value, "tag value")
    _check_backslashes(value, ",= ", "tag value")
    return _KEY_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def format_field_value(value: bool | int | float | str) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise LineProtocolError(f"integer {value} outside int64")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LineProtocolError(f"field value {value} is not finite")
        return repr(value)
    if isinstance(value, str):
        if "\r" in value:
            # The 1.x parser keeps "\n" inside quotes but turns "\r\n" into "\n".
            raise LineProtocolError("string field contains a carriage return")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise LineProtocolError(f"unsupported field type {type(value).__name__}")


def encode_line(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, bool | int | float | str],
    ts_ns: int | None = None,
) -> str:
    """One point. Tags with no value (None or "") are left out; tags are sorted by key,
    as InfluxDB recommends for write speed."""
    if not fields:
        raise LineProtocolError(f"point {measurement!r} has no fields")
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value is None or value == "":
            continue
        parts.append(f"{escape_key(key)}={escape_tag_value(value)}")
    head = ",".join(parts)
    body = ",".join(f"{escape_key(k)}={format_field_value(v)}" for k, v in fields.items())
    if ts_ns is None:
        return f"{head} {body}"
    return f"{head} {body} {int(ts_ns)}"


def ts_to_ns(ts: float) -> int:
    """Event time as the schema stores it: microsecond resolution, in nanoseconds."""
    return round(ts * 1e6) * 1000


# --- readings -----------------------------------------------------------------

# Stream values and our tag/field names are plain identifiers; only ids from the
# registry (already restricted to [A-Za-z0-9_.:-]) and vendor strings need checking.
_SAFE_TAG = re.compile(r"^[A-Za-z0-9_.:\-]+$")


def _tag(value: str) -> str:
    return value if _SAFE_TAG.match(value) else escape_tag_value(value)


def _accel_summary(fields: Mapping[str, FieldValue]) -> dict[str, bool | int | float | str]:
    axes = [fields.get(a) for a in ("x", "y", "z")]
    series = [a for a in axes if isinstance(a, tuple)]
    out: dict[str, bool | int | float | str] = {}
    if len(series) == 3 and series[0]:
        magnitudes = [math.sqrt(x * x + y * y + z * z) for x, y, z in zip(*series, strict=False)]
        out["n"] = len(magnitudes)
        out["peak_g"] = float(max(magnitudes))
        out["min_g"] = float(min(magnitudes))
    else:
        out["n"] = 0
    rate = fields.get("rate_hz")
    if isinstance(rate, int | float) and not isinstance(rate, bool):
        out["rate_hz"] = float(rate)
    return out


def reading_fields(reading: Reading) -> dict[str, bool | int | float | str]:
    """The fields stored for a reading: scalar fields as they are, accel summarised."""
    if reading.stream is Stream.ACCEL:
        out = _accel_summary(reading.fields)
        seq = reading.fields.get("seq")
        if isinstance(seq, int) and not isinstance(seq, bool):
            out["seq"] = seq
        return out
    fields = {k: v for k, v in reading.fields.items() if not isinstance(v, tuple)}
    if reading.stream is Stream.HEARTBEAT:
        # A heartbeat's news is that it came; most carry nothing else (no `seq`).
        fields["alive"] = True
    return fields


_PREFIXES: dict[tuple[str, str, str, str | None, str | None, str], str] = {}
_FIELD_KEYS: dict[str, str] = {}
_CACHE_MAX = 100_000  # distinct series / field names remembered


def _series_prefix(reading: Reading) -> str:
    key = (
        reading.stream.value,
        reading.site_id,
        reading.device_id,
        reading.room_id,
        reading.resident_id,
        reading.source,
    )
    prefix = _PREFIXES.get(key)
    if prefix is None:
        tags = f"device={_tag(reading.device_id)},site={_tag(reading.site_id)}"
        if reading.room_id:
            tags = f"{tags},room={_tag(reading.room_id)}"
        if reading.resident_id:
            tags = f"{tags},resident={_tag(reading.resident_id)}"
        if reading.source:
            tags = f"{tags},source={_tag(reading.source)}"
        prefix = f"{reading.stream.value},{tags} "
        if len(_PREFIXES) >= _CACHE_MAX:
            _PREFIXES.clear()
        _PREFIXES[key] = prefix
    return prefix


def _field_key(name: str) -> str:
    escaped = _FIELD_KEYS.get(name)
    if escaped is None:
        escaped = escape_key(name)
        if len(_FIELD_KEYS) >= _CACHE_MAX:
            _FIELD_KEYS.clear()
        _FIELD_KEYS[name] = escaped
    return escaped


def point_for_reading(reading: Reading) -> str:
    """The line for one reading (docs/influx-schema.md): measurement = stream, tags
    site/device/room/resident/source, timestamp = event time in ns. The escaped
    series prefix and field keys are cached: ingest writes the same series over and over.

    The fields of `reading_fields`, built in one pass without the intermediate dict
    (ingest calls this for every reading)."""
    stream = reading.stream
    if stream is Stream.ACCEL:
        fields: Mapping[str, FieldValue] = reading_fields(reading)
        heartbeat = False
    else:
        fields = reading.fields
        heartbeat = stream is Stream.HEARTBEAT
    keys = _FIELD_KEYS
    parts: list[str] = []
    for k, v in fields.items():
        kind = type(v)
        if kind is tuple:
            continue
        if heartbeat and k == "alive":
            continue  # written as true below, as reading_fields does
        key = keys.get(k) or _field_key(k)
        if kind is float and v - v == 0:  # type: ignore[operator]  # finite
            parts.append(f"{key}={v!r}")
        elif kind is int and INT64_MIN <= v <= INT64_MAX:  # type: ignore[operator]
            parts.append(f"{key}={v}i")
        else:
            parts.append(f"{key}={format_field_value(v)}")  # type: ignore[arg-type]
    if heartbeat:
        # A heartbeat's news is that it came; most carry nothing else (no `seq`).
        parts.append("alive=true")
    if not parts:
        raise LineProtocolError(f"reading of {stream} has no storable fields")
    return f"{_series_prefix(reading)}{','.join(parts)} {round(reading.ts * 1e6) * 1000}"


# --- HTTP client ----------------------------------------------------------------


class InfluxClient:
    """Async client for the v1 HTTP API. Use as an async context manager or call `aclose`."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        gzip_level: int = 1,
    ) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username and not token else None
        self.url = url.rstrip("/")
        self.gzip_level = gzip_level
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=headers, auth=auth, timeout=timeout
        )

    @classmethod
    def from_settings(cls, settings: Any) -> InfluxClient:
        return cls(
            settings.influx_url,
            token=settings.influx_token,
            username=settings.influx_username,
            password=settings.influx_password,
        )

    async def __aenter__(self) -> InfluxClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def ping(self) -> bool:
        try:
            resp = await self._http.get("/ping")
        except httpx.HTTPError:
            return False
        return resp.status_code == 204

    async def write(self, lines: Iterable[str], db: str, precision: str = "ns") -> None:
        """Write lines (gzip body). Raises `InfluxError`; `retryable` is False when
        InfluxDB refused the data itself (a 4xx), True for outages and 5xx."""
        await self.write_body("\n".join(lines).encode("utf-8"), db, precision)

    async def write_body(self, body: bytes, db: str, precision: str = "ns") -> None:
        """Write an already joined line-protocol body (e.g. a spooled batch)."""
        if not body:
            return
        payload = gzip.compress(body, compresslevel=self.gzip_level)
        try:
            resp = await self._http.post(
                "/write",
                params={"db": db, "precision": precision},
                content=payload,
                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
            )
        except httpx.HTTPError as exc:
            raise InfluxError(f"write failed: {exc!r}", retryable=True) from exc
        if resp.status_code == 204:
            return
        raise InfluxError(
            f"write refused ({resp.status_code}): {_error_text(resp)}",
            status=resp.status_code,
            retryable=resp.status_code >= 500 or resp.status_code in (401, 403, 404, 429),
        )

    async def query(self, influxql: str, db: str | None = None) -> list[dict[str, Any]]:
        """Run InfluxQL; one dict per row with its columns, plus `_measurement` (series
        name) and `_tags` (the series' GROUP BY tags). Raises `InfluxError` on errors."""
        data: dict[str, str] = {"q": influxql}
        if db:
            data["db"] = db
        try:
            resp = await self._http.post("/query", data=data, params={"epoch": "ns"})
        except httpx.HTTPError as exc:
            raise InfluxError(f"query failed: {exc!r}", retryable=True) from exc
        if resp.status_code != 200:
            raise InfluxError(
                f"query refused ({resp.status_code}): {_error_text(resp)}",
                status=resp.status_code,
                retryable=resp.status_code >= 500,
            )
        return rows_from_response(resp.json())


def rows_from_response(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for result in doc.get("results", []):
        if "error" in result:
            raise InfluxError(f"query error: {result['error']}", retryable=False)
        for series in result.get("series", []):
            columns: Sequence[str] = series.get("columns", [])
            name = series.get("name")
            tags = dict(series.get("tags") or {})
            for values in series.get("values", []):
                row = dict(zip(columns, values, strict=False))
                row["_measurement"] = name
                row["_tags"] = tags
                rows.append(row)
    return rows


def _error_text(resp: httpx.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return resp.text[:500]
    if isinstance(doc, dict) and "error" in doc:
        return str(doc["error"])[:500]
    return resp.text[:500]


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
