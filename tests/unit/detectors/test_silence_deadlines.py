"""`Deadlines` as two columns behaves as the sorted list of (deadline, device) pairs it
replaced (session 7's, copied here), whatever the moves, pops and rebuilds."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from operator import itemgetter

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.silence import Build, Deadlines
from tests.helpers.examples import examples


class OldDeadlines:
    """`detectors.silence.Deadlines` until session 8."""

    def __init__(self) -> None:
        self._items: list[tuple[float, str]] | None = None

    def reset(self) -> None:
        self._items = None

    def items(self, build: Build) -> list[tuple[float, str]]:
        items = self._items
        if items is None:
            items = self._items = sorted(build())
        return items

    def move(self, device_id: str, old: float | None, new: float | None) -> None:
        items = self._items
        if items is None or old == new:
            return
        if old is not None:
            i = bisect_left(items, (old, device_id))
            if i == len(items) or items[i] != (old, device_id):
                self._items = None
                return
            del items[i]
        if new is not None:
            insort(items, (new, device_id))

    def due_by(self, until: float, build: Build) -> bool:
        items = self._items
        if items is None:
            items = self.items(build)
        return bool(items) and items[0][0] <= until

    def pop_until(self, until: float, build: Build) -> list[tuple[float, str]]:
        items = self.items(build)
        if not items or items[0][0] > until:
            return []
        k = bisect_right(items, until, key=itemgetter(0))
        out = items[:k]
        del items[:k]
        return out


_DEVICES = ["a", "b", "c", "d"]
_TIMES = st.one_of(st.none(), st.integers(0, 6).map(float))  # ties are common
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("move"), st.sampled_from(_DEVICES), _TIMES, _TIMES),
        st.tuples(st.just("pop"), st.just(""), _TIMES, st.none()),
        st.tuples(st.just("due_by"), st.just(""), _TIMES, st.none()),
        st.tuples(st.just("reset"), st.just(""), st.none(), st.none()),
        st.tuples(st.just("set"), st.sampled_from(_DEVICES), _TIMES, st.none()),
    ),
    max_size=60,
)


@settings(max_examples=examples(300), deadline=None)
@given(ops=_OPS)
def test_the_columns_behave_as_the_sorted_pairs(
    ops: list[tuple[str, str, float | None, float | None]],
) -> None:
    # The state the rule builds from: device → its deadline (None: not counted).
    truth: dict[str, float | None] = dict.fromkeys(_DEVICES, 1.0)

    def build() -> list[tuple[float, str]]:
        return [(t, d) for d, t in truth.items() if t is not None]

    old, new = OldDeadlines(), Deadlines()
    for op, device, a, b in ops:
        if op == "move":  # a move as the rules make it (`old` may be stale: a rebuild)
            old.move(device, a, b)
            new.move(device, a, b)
            truth[device] = b
        elif op == "set":  # the state changed without a move: only a rebuild sees it
            truth[device] = a
        elif op == "pop":
            until = 3.0 if a is None else a
            assert new.pop_until(until, build) == old.pop_until(until, build)
        elif op == "due_by":
            until = 3.0 if a is None else a
            assert new.due_by(until, build) == old.due_by(until, build)
        else:
            old.reset()
            new.reset()
        pairs = new.items(build)
        expected = old.items(build)
        assert list(pairs) == expected
        assert len(pairs) == len(expected)
        if expected:
            assert pairs[0] == expected[0] and pairs[-1] == expected[-1]
            assert pairs[1:] == expected[1:]
            assert bisect_left(pairs, (2.0,)) == bisect_left(expected, (2.0,))
