"""The dedupe window's columns behave as the dict of key tuples they replaced (session 7's
`SiteDetectors.recent` and its `forget_before`), and hold far less."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.recent_keys import Key, RecentKeys
from tests.helpers.examples import examples
from tests.helpers.memory import deep_size


def _dict_forget_before(recent: dict[Key, int | None], horizon: float) -> None:
    """`SiteDetectors.forget_before` as it was."""
    expired = []
    for key in recent:
        if key[2] >= horizon:
            break
        expired.append(key)
    for key in expired:
        del recent[key]


_KEYS = st.tuples(
    st.sampled_from(["pir-bed", "pir-liv", "door"]),
    st.sampled_from(["motion", "heartbeat"]),
    st.integers(0, 30).map(float),  # few event times: keys sharing one are common
)
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _KEYS, st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))),
        st.tuples(st.just("forget"), st.floats(0, 31), st.none()),
        st.tuples(st.just("look"), _KEYS, st.none()),
    ),
    max_size=80,
)


@settings(max_examples=examples(300), deadline=None)
@given(ops=_OPS, restored=st.lists(_KEYS, max_size=10))
def test_the_columns_behave_as_the_dict(
    ops: list[tuple[str, object, int | None]], restored: list[Key]
) -> None:
    model: dict[Key, int | None] = {k: None for k in restored}  # as `restore` made it
    window = RecentKeys(restored)
    for op, arg, content in ops:
        if op == "set":
            assert isinstance(arg, tuple)
            model[arg] = content
            window[arg] = content
        elif op == "forget":
            assert isinstance(arg, float)
            _dict_forget_before(model, arg)
            window.forget_before(arg)
        else:
            assert isinstance(arg, tuple)
            assert (arg in window) == (arg in model)
            assert window.get(arg, 0) == model.get(arg, 0)
        assert list(window) == list(model)
        assert dict(window.items()) == model
        assert len(window) == len(model)


def test_content_unknown_is_none_and_a_key_keeps_its_place() -> None:
    window = RecentKeys([("a", "motion", 1.0)])
    assert window[("a", "motion", 1.0)] is None
    window[("b", "motion", 2.0)] = 7
    window[("a", "motion", 1.0)] = 5  # a new content for a known key: in place
    assert list(window.items()) == [(("a", "motion", 1.0), 5), (("b", "motion", 2.0), 7)]
    not_a_key: object = "a"
    assert ("a", "motion", 2.0) not in window and not_a_key not in window


def test_a_window_of_sixteen_keys_holds_a_fraction_of_the_dict() -> None:
    keys = [(f"dev-{i % 8}", "motion", 1.7e9 + 57.4 * i) for i in range(16)]
    window = RecentKeys()
    model: dict[Key, int | None] = {}
    for i, key in enumerate(keys):
        window[key] = model[key] = hash(("content", i))
    strings = {id(s) for k in keys for s in k[:2]}  # the readings', shared
    assert deep_size(window, strings) * 3 < deep_size(model, strings)
