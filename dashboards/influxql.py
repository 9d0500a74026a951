"""A typed InfluxQL target and annotation for grafana-foundation-sdk.

The SDK has builders for many data sources but none for InfluxDB. Grafana's
InfluxDB plugin, in InfluxQL mode with `rawQuery: true`, takes the query text as
written; that is all our dashboards use, so the target is a small dataclass.

Loading a dashboard back (`load_dashboard`) goes through the SDK, with two hooks:
targets of an `influxdb` data source decode to `InfluxQLQuery` (a registered
dataquery variant), and dashboard annotations whose data source is InfluxDB keep
their InfluxQL `target` (the SDK's annotation model knows only Grafana's own
annotation targets and would drop it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    AnnotationQuery,
    Dashboard,
    DataSourceRef,
)

INFLUXDB_TYPE = "influxdb"
DATASOURCE_UID = "eldercare-influxdb"
DATASOURCE_NAME = "Eldercare InfluxDB"

ResultFormat = Literal["time_series", "table"]


def datasource_ref(uid: str = DATASOURCE_UID) -> DataSourceRef:
    """The provisioned InfluxDB data source (see `dashboards.provisioning`)."""
    return DataSourceRef(type_val=INFLUXDB_TYPE, uid=uid)


@dataclass(slots=True)
class InfluxQLQuery(cogvariants.Dataquery):
    """One InfluxQL target: the JSON Grafana's InfluxDB plugin stores for a raw query."""

    ref_id: str
    query: str
    result_format: ResultFormat = "time_series"
    alias: str | None = None
    hide: bool = False
    datasource: DataSourceRef | None = None

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": self.datasource or datasource_ref(),
            "rawQuery": True,
            "query": self.query,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            doc["alias"] = self.alias
        if self.hide:
            doc["hide"] = True
        return doc

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        return cls(
            ref_id=str(data.get("refId", "")),
            query=str(data.get("query", "")),
            result_format=data.get("resultFormat", "time_series"),
            alias=data.get("alias"),
            hide=bool(data.get("hide", False)),
            datasource=DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
        )


def _dataquery_from_json(data: dict[str, Any]) -> cogvariants.Dataquery:
    # Grafana hands every target of a panel the panel's data source type; only raw
    # InfluxQL targets are ours, anything else is kept verbatim.
    if data.get("rawQuery") is True and "query" in data:
        return InfluxQLQuery.from_json(data)
    return cogruntime.UnknownDataquery(data)


cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=INFLUXDB_TYPE, from_json_hook=_dataquery_from_json)
)


class InfluxQLTarget(cogbuilder.Builder[InfluxQLQuery]):
    """Builder in the SDK's style: `InfluxQLTarget("A").query("SELECT …").table()`."""

    def __init__(self, ref_id: str = "A") -> None:
        self._internal = InfluxQLQuery(ref_id=ref_id, query="")

    def build(self) -> InfluxQLQuery:
        if not self._internal.query.strip():
            raise ValueError(f"InfluxQL target {self._internal.ref_id} has no query")
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def query(self, query: str) -> Self:
        self._internal.query = " ".join(query.split())  # one line, as Grafana's editor keeps it
        return self

    def table(self) -> Self:
        self._internal.result_format = "table"
        return self

    def time_series(self) -> Self:
        self._internal.result_format = "time_series"
        return self

    def alias(self, alias: str) -> Self:
        self._internal.alias = alias
        return self

    def hide(self, hide: bool = True) -> Self:
        self._internal.hide = hide
        return self

    def datasource(self, ref: DataSourceRef) -> Self:
        self._internal.datasource = ref
        return self


_LEGACY_ANNOTATION_KEYS = ("query", "textColumn", "tagsColumn")


class InfluxQLAnnotation(AnnotationQuery):
    """A dashboard annotation from an InfluxQL query (Grafana 10's InfluxDB plugin
    reads `target.query` plus the columns giving text and tags)."""

    def __init__(
        self,
        name: str = "",
        query: str = "",
        *,
        icon_color: str = "red",
        enable: bool = True,
        text_column: str | None = None,
        tags_column: str | None = None,
        datasource: DataSourceRef | None = None,
    ) -> None:
        super().__init__(
            name=name,
            datasource=datasource or datasource_ref(),
            enable=enable,
            icon_color=icon_color,
        )
        self.query = " ".join(query.split())
        self.text_column = text_column
        self.tags_column = tags_column

    def to_json(self) -> dict[str, object]:
        doc = super().to_json()
        target: dict[str, object] = {
            "refId": "Anno",
            "fromAnnotations": True,
            "rawQuery": True,
            "query": self.query,
            "resultFormat": "table",
        }
        if self.text_column:
            target["textColumn"] = self.text_column
        if self.tags_column:
            target["tagsColumn"] = self.tags_column
        doc["target"] = target
        # The same fields at the top level too: the InfluxDB plugin's older annotation
        # format, which Grafana migrates into `target` when no target is present.
        doc.update({k: v for k, v in target.items() if k in _LEGACY_ANNOTATION_KEYS})
        return doc

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        target = data.get("target") or {}
        ds = data.get("datasource")
        return cls(
            name=str(data.get("name", "")),
            query=str(target.get("query", "")),
            icon_color=str(data.get("iconColor", "red")),
            enable=bool(data.get("enable", True)),
            text_column=target.get("textColumn"),
            tags_column=target.get("tagsColumn"),
            datasource=DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
        )


class InfluxQLAnnotationBuilder(cogbuilder.Builder[AnnotationQuery]):
    def __init__(self, annotation: InfluxQLAnnotation) -> None:
        self._annotation = annotation

    def build(self) -> AnnotationQuery:
        return self._annotation


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    """The dashboard as plain JSON data (what Grafana stores and provisioning reads)."""
    doc: dict[str, Any] = json.loads(json.dumps(dashboard, cls=JSONEncoder, ensure_ascii=False))
    return doc


def load_dashboard(doc: dict[str, Any]) -> Dashboard:
    """Decode dashboard JSON through the SDK, keeping InfluxQL targets and annotations."""
    dashboard = Dashboard.from_json(doc)
    raw = (doc.get("annotations") or {}).get("list") or []
    if dashboard.annotations.list_val is not None:
        dashboard.annotations.list_val = [
            InfluxQLAnnotation.from_json(item)
            if (item.get("datasource") or {}).get("type") == INFLUXDB_TYPE
            else loaded
            for item, loaded in zip(raw, dashboard.annotations.list_val, strict=True)
        ]
    return dashboard
