"""`registry apply` refuses bad `detectors:` overrides (file, key path, reason), changing
nothing; the check is the detectors' own, passed to the kernel as a validator."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from detectors.catalogue import registry_problems
from eldercare.db import create_all, create_engine, session_factory
from eldercare.registry_apply import RegistryError, apply_document, parse_registry
from eldercare.registry_store import load_document
from eldercare_app.registry_cli import app

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "registry.yaml"
GOOD = "bathroom_too_long: {night_minutes: 20}"


def _run(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"ELDERCARE_DATABASE_URL": url})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_problems_name_the_rule_and_key_of_sites_and_residents() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert registry_problems(parse_registry(text)) == []
    bad = parse_registry(
        text.replace(GOOD, "{bathroom_too_long: {night_minute: 20}, inactivity: {max_hours: -1}}")
    )
    problems = registry_problems(bad)
    assert [p.path for p in problems] == [
        "sites[hh-3-2-401].detectors.bathroom_too_long",
        "sites[hh-3-2-401].detectors.inactivity",
    ]
    assert "has no setting 'night_minute'" in problems[0].message
    assert "max_hours" in problems[1].message
    doc = parse_registry(text)
    site = doc.sites[0]
    resident = site.residents[0].model_copy(update={"detectors": {"not_up": {"margin": 2}}})
    doc = doc.model_copy(
        update={"sites": [site.model_copy(update={"residents": [resident]}), *doc.sites[1:]]}
    )
    (problem,) = registry_problems(doc)
    assert problem.path == f"sites[{site.id}].residents[{resident.id}].detectors.not_up"
    assert "no setting 'margin'" in problem.message


def test_cli_apply_refuses_a_bad_override_and_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/reg.db"
    assert _run(url, "apply", str(EXAMPLE))[0] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace(GOOD, "bathroom_too_long: {night_minute: 5}"),
        encoding="utf-8",
    )
    code, out, err = _run(url, "apply", str(bad))
    assert code == 1 and out == ""
    assert f"{bad}: sites[hh-3-2-401].detectors.bathroom_too_long:" in err
    assert "no setting 'night_minute'" in err and "nothing was changed" in err
    # A value that is valid for the registry model but out of range for the rule.
    bad.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace(GOOD, "bathroom_too_long: {night_minutes: 0}"),
        encoding="utf-8",
    )
    code, _, err = _run(url, "apply", str(bad))
    assert code == 1 and "night_minutes" in err
    code, out, _ = _run(url, "show")
    assert out.startswith("registry version 1: 4 sites")


async def test_apply_document_runs_extra_validators_before_writing(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/reg.db")
    await create_all(engine)
    sessions = session_factory(engine)
    text = EXAMPLE.read_text(encoding="utf-8")
    bad = parse_registry(text.replace(GOOD, "no_such_rule: {x: 1}"))
    with pytest.raises(RegistryError, match=r"sites\[hh-3-2-401\]\.detectors\.no_such_rule"):
        await apply_document(sessions, bad, source="api", extra_validators=[registry_problems])
    assert (await load_document(sessions)).sites == []
    result = await apply_document(
        sessions, parse_registry(text), extra_validators=[registry_problems]
    )
    assert result.total > 0
    await engine.dispose()
