"""Hostile registry input: whatever the text or data, the loader answers with a document or
a RegistryError, never another exception; YAML bombs and deep nesting are refused fast
and in bounded memory."""

from __future__ import annotations

import copy
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eldercare.registry_apply import (
    RegistryError,
    dump_registry,
    parse_registry,
    validate_registry,
)
from eldercare.registry_model import RegistryDocument
from eldercare_app.mqtt_accounts import acl_text
from tests.helpers.examples import examples

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "registry.yaml"
# The sample registry's first home (PyYAML's pure-Python loader is slow: a small base
# keeps many examples cheap).
EXAMPLE_DATA: dict[str, Any] = {
    "sites": yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["sites"][:1]
}
SETTINGS = settings(
    max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["home", "institution", "bedroom", "bed", "zh-CN", "Asia/Shanghai", ""])
)
nested = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)


def _accepts_or_refuses(call: Any, *args: Any) -> RegistryDocument | None:
    try:
        doc = call(*args)
    except RegistryError as exc:
        assert exc.problems, "a RegistryError names at least one problem"
        str(exc)  # renders
        return None
    assert isinstance(doc, RegistryDocument)
    return doc


@SETTINGS
@given(text=st.text(max_size=400))
def test_any_text_gives_a_document_or_a_registry_error(text: str) -> None:
    _accepts_or_refuses(parse_registry, text)


yaml_fragments = st.lists(
    st.sampled_from(
        ["sites:", "\n", "  - ", "id: ", "kind: ", "home", "&a ", "*a", "[", "]", "{", "}",
         ": ", ", ", "'", '"', "- ", "    ", "!!python/object:os.system ", "!!binary ", "<<: ",
         "? ", "|", ">", "%YAML 1.1\n", "---\n", "...\n", "\t", "#", "20:30", "0x1F", "~"]
    ),
    max_size=60,
).map("".join)  # fmt: skip


@SETTINGS
@given(text=yaml_fragments)
def test_yaml_shaped_text_gives_a_document_or_a_registry_error(text: str) -> None:
    _accepts_or_refuses(parse_registry, text)


@SETTINGS
@given(data=nested)
def test_any_nested_data_gives_a_document_or_a_registry_error(data: Any) -> None:
    _accepts_or_refuses(validate_registry, data)
    _accepts_or_refuses(validate_registry, {"sites": [data]})


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


EXAMPLE_PATHS = _paths(EXAMPLE_DATA)[1:]


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.sampled_from(EXAMPLE_PATHS), nested), min_size=1, max_size=3))
def test_a_real_registry_with_subtrees_replaced_is_valid_or_refused_cleanly(
    edits: list[tuple[tuple[Any, ...], Any]],
) -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    for path, value in edits:
        target = data
        try:
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed the path
    text = yaml.safe_dump(data, allow_unicode=True)
    doc = _accepts_or_refuses(parse_registry, text)
    if doc is not None:
        # What validates is usable downstream: it dumps, reloads the same, and has an ACL.
        assert parse_registry(dump_registry(doc)) == doc
        acl_text(doc)


def _laughs(levels: int, indent: str = "") -> str:
    lines = [f'{indent}a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "bcdefghijklmnop"[: levels - 1]
    previous = "a"
    for name in names:
        lines.append(f"{indent}{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(lines) + "\n"


BOMBS = {
    # At the top: refused by the schema anyway, but must not be built first.
    "billion laughs at the top": _laughs(9) + "sites: []\n",
    # Inside a free-form field (detector overrides take any value): it would validate,
    # and explode in whatever walks it next (dump, JSON for the store).
    "billion laughs in detector overrides": (
        "sites:\n  - id: s\n    kind: home\n    name: n\n    organisation: o\n"
        "    detectors:\n      fall:\n" + _laughs(9, indent="        ")
    ),
    "a merge-key bomb": "base: &b {a: 1, b: 2}\n"
    + "".join(
        f"m{i}: &m{i} {{<<: *{'b' if i == 0 else f'm{i - 1}'}, k{i}: [*b, *b]}}\n"
        for i in range(30)
    )
    + "sites: []\n",
    "deep flow lists": "sites: " + "[" * 30_000 + "]" * 30_000 + "\n",
    "deep flow maps": "sites: " + "{a: " * 10_000 + "1" + "}" * 10_000 + "\n",
    "deep block maps": "".join("  " * i + f"k{i}:\n" for i in range(3_000)) + "  " * 3_000 + "v\n",
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_yaml_bombs_are_refused_fast_in_bounded_memory(name: str) -> None:
    text = BOMBS[name]
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(RegistryError) as refused:
            parse_registry(text, "bomb.yaml")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 10, f"{name}: {elapsed:.1f}s"  # generous: a shared 2-core machine
    assert peak < 64 * 2**20, f"{name}: peak {peak / 2**20:.0f} MiB"
    message = str(refused.value)
    assert message.startswith("bomb.yaml")
    if "laughs" in name or "merge" in name:
        assert "aliases expand" in message or "unknown key" in message


def test_modest_alias_use_is_still_allowed() -> None:
    text = (
        "sites:\n"
        "  - id: s1\n    kind: home\n    name: one\n    organisation: o\n"
        "    detectors: &shared {bathroom_too_long: {night_minutes: 20}}\n"
        "  - id: s2\n    kind: home\n    name: two\n    organisation: o\n"
        "    detectors: *shared\n"
    )
    doc = parse_registry(text)
    assert doc.sites[0].detectors == doc.sites[1].detectors
