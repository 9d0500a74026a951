"""The built dashboards as Grafana data: they round-trip through the SDK, every
variable and data source they refer to exists, every panel has a unit and
thresholds, and `eldercare dashboards build` writes a folder Grafana can load."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from dashboards.build import dashboard_docs, write_build
from dashboards.check import TimeRange, interpolate, variables_used
from dashboards.floors import influx_regex, institutions
from dashboards.influxql import DATASOURCE_UID, InfluxQLTarget, dashboard_json, load_dashboard
from dashboards.provisioning import DEFAULT_DASHBOARDS_PATH
from device_sim.population import registry_document
from device_sim.simulation import SimConfig, Simulation
from eldercare.registry_model import RegistryDocument
from eldercare_app.cli import _register_subcommands, app


@pytest.fixture(scope="module")
def registry() -> RegistryDocument:
    sim = Simulation(SimConfig(homes=2, institutions=2, seed=5, institution_floors=3))
    return registry_document(sim.sites)


@pytest.fixture(scope="module")
def docs(registry: RegistryDocument) -> list[dict[str, Any]]:
    return dashboard_docs(registry) + [
        d for d in dashboard_docs(None) if d["uid"] == "eldercare-institution"
    ]


def _panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in doc["panels"] if p["type"] != "row"]


def _queries(doc: dict[str, Any]) -> list[str]:
    out = [t["query"] for p in _panels(doc) for t in p.get("targets", [])]
    out += [a["target"]["query"] for a in doc["annotations"].get("list", [])]
    return out


def test_every_dashboard_round_trips_through_the_sdk(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        text = json.dumps(doc, ensure_ascii=False)
        again = dashboard_json(load_dashboard(json.loads(text)))
        assert again == doc, doc["uid"]


def test_the_catalogue_has_each_kind_and_one_institution_per_registry_institution(
    docs: list[dict[str, Any]], registry: RegistryDocument
) -> None:
    uids = [d["uid"] for d in docs]
    assert len(uids) == len(set(uids))
    assert all(len(u) <= 40 for u in uids)
    for uid in ("operations", "resident", "map", "coverage", "institution"):
        assert f"eldercare-{uid}" in uids
    insts = [s.id for s in registry.sites if s.kind.value == "institution"]
    assert len(insts) == 2
    for site in insts:
        assert f"eldercare-institution-{site}" in uids


def test_every_variable_used_is_defined_before_use(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        defined: list[str] = []
        for v in doc["templating"].get("list", []):
            assert variables_used(v["query"]) <= set(defined), (doc["uid"], v["name"])
            defined.append(v["name"])
        for query in _queries(doc):
            assert variables_used(query) <= set(defined), (doc["uid"], query)
            assert "$timeFilter" in query or query.startswith("SHOW"), query
    resident = next(d for d in docs if d["uid"] == "eldercare-resident")
    assert [v["name"] for v in resident["templating"]["list"]] == ["site", "resident"]
    coverage = next(d for d in docs if d["uid"] == "eldercare-coverage")
    assert [v["name"] for v in coverage["templating"]["list"]] == ["org"]


def test_every_datasource_reference_is_the_provisioned_one(
    docs: list[dict[str, Any]], tmp_path: Path
) -> None:
    built = write_build(tmp_path)
    provisioned = yaml.safe_load(built.datasources.read_text())["datasources"]
    assert [d["uid"] for d in provisioned] == [DATASOURCE_UID]
    refs: list[dict[str, Any]] = []
    for doc in docs:
        for p in _panels(doc):
            refs.append(p["datasource"])
            refs += [t["datasource"] for t in p["targets"]]
        refs += [a["datasource"] for a in doc["annotations"].get("list", [])]
        refs += [v["datasource"] for v in doc["templating"].get("list", [])]
    assert refs
    assert all(r == {"type": "influxdb", "uid": provisioned[0]["uid"]} for r in refs), refs


def test_every_panel_has_a_unit_thresholds_and_a_raw_influxql_target(
    docs: list[dict[str, Any]],
) -> None:
    for doc in docs:
        titles = [p["title"] for p in _panels(doc)]
        assert len(titles) == len(set(titles)), doc["uid"]
        for p in _panels(doc):
            where = (doc["uid"], p["title"])
            defaults = p["fieldConfig"]["defaults"]
            assert defaults.get("unit"), where
            steps = defaults["thresholds"]["steps"]
            assert steps and steps[0]["value"] is None and steps[0]["color"], where
            assert [s["value"] for s in steps[1:]] == sorted(s["value"] for s in steps[1:])
            assert p["targets"], where
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs)), where
            for t in p["targets"]:
                assert t["rawQuery"] is True and t["resultFormat"] in ("time_series", "table")
            pos = p["gridPos"]
            assert pos["w"] > 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, where
            # Titles for Chinese supervisors, with the English beside them.
            assert re.search(r"[\u4e00-\u9fff]", p["title"]) and re.search("[A-Za-z]", p["title"])


def test_institution_floors_come_from_the_registry(registry: RegistryDocument) -> None:
    places = institutions(registry)
    assert [len(i.floors) for i in places] == [3, 3]
    first = places[0]
    assert [f.label for f in first.floors] == ["1F", "2F", "3F"]
    site = next(s for s in registry.sites if s.id == first.site_id)
    floor_of = {r.id: r.floor for r in site.rooms}
    for floor in first.floors:
        assert all(floor_of[r] == floor.label for r in floor.rooms)
        for rid in floor.residents:
            resident = site.resident(rid)
            assert resident is not None and resident.bed is not None
            bed = next(b for b in site.beds if b.id == resident.bed)
            assert floor_of[bed.room] == floor.label
    board = next(d for d in dashboard_docs(registry) if d["uid"].endswith(first.site_id))
    by_floor = next(p for p in board["panels"] if p["title"].startswith("各楼层警报"))
    assert [t["alias"] for t in by_floor["targets"]] == ["1F", "2F", "3F"]


def test_influx_regex_matches_exactly_the_ids_given() -> None:
    pattern = influx_regex(["301-1", "a.b", "x/y"])
    assert pattern == r"/^(301\-1|a\.b|x\/y)$/"
    body = re.compile(pattern[1:-1].replace(r"\/", "/"))
    assert body.match("a.b") and not body.match("axb") and not body.match("301-10")


def test_interpolation_follows_grafana_formats() -> None:
    span = TimeRange(1000, 2000, "5m")
    q = (
        "SELECT x FROM m WHERE s = '$site' AND o =~ /^${org:regex}/ AND $timeFilter "
        "GROUP BY time($__interval)"
    )
    sent = interpolate(q, {"site": "o'b", "org": "滨州市/滨城区"}, span)
    assert sent == (
        "SELECT x FROM m WHERE s = 'o\\'b' AND o =~ /^滨州市\\/滨城区/ "
        "AND time >= 1000ms and time <= 2000ms GROUP BY time(5m)"
    )
    assert interpolate("o =~ /^${org:regex}/", {"org": ".*"}, span) == "o =~ /^.*/"
    with pytest.raises(KeyError):
        interpolate("s = '$nowhere'", {}, span)


def test_a_target_without_a_query_is_refused() -> None:
    with pytest.raises(ValueError):
        InfluxQLTarget("A").build()


def test_build_command_writes_a_folder_grafana_loads(
    tmp_path: Path, registry: RegistryDocument
) -> None:
    reg = tmp_path / "registry.yaml"
    reg.write_text(
        yaml.safe_dump(registry.model_dump(mode="json", exclude_defaults=True), allow_unicode=True)
    )
    out = tmp_path / "grafana"
    (out / "dashboards").mkdir(parents=True)
    (out / "dashboards" / "stale.json").write_text("{}")
    _register_subcommands()
    result = CliRunner().invoke(
        app, ["dashboards", "build", "--out", str(out), "--registry", str(reg)]
    )
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (out / "dashboards").iterdir())
    assert "stale.json" not in files and len(files) == 4 + 2
    for f in (out / "dashboards").iterdir():
        doc = json.loads(f.read_text())
        assert f.name == f"{doc['uid']}.json"
    providers = yaml.safe_load((out / "provisioning/dashboards/eldercare.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == DEFAULT_DASHBOARDS_PATH
    sources = yaml.safe_load((out / "provisioning/datasources/eldercare.yaml").read_text())
    (ds,) = sources["datasources"]
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "InfluxQL"
    assert ds["url"] == "${ELDERCARE_INFLUX_URL}"
    assert ds["jsonData"]["dbName"] == "${ELDERCARE_INFLUX_DB}"
    assert ds["secureJsonData"]["httpHeaderValue1"] == "Token ${ELDERCARE_INFLUX_TOKEN}"

    bad = CliRunner().invoke(
        app, ["dashboards", "build", "--out", str(out), "--registry", str(tmp_path / "none.yaml")]
    )
    assert bad.exit_code == 2 and "registry" in bad.output


def test_list_command_prints_every_panel_and_its_query() -> None:
    _register_subcommands()
    result = CliRunner().invoke(app, ["dashboards", "list"])
    assert result.exit_code == 0, result.output
    for doc in dashboard_docs(None):
        assert f"## {doc['title']}" in result.output
        for panel in _panels(doc):
            assert f"**{panel['title']}**" in result.output
            for t in panel["targets"]:
                assert t["query"] in result.output
