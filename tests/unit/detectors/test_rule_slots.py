"""A rule object is one per rule and site, by the thousand sites in a detector worker: rules
keep their attributes in slots, not a `__dict__` each. The silence rules keep theirs (their
`functools.cached_property` needs one)."""

from __future__ import annotations

import functools

from detectors.catalogue import CATALOGUE  # noqa: F401  (imports every rule module)
from detectors.rule import Rule
from detectors.silence import SilenceRule


def _subclasses(cls: type) -> list[type]:
    out: list[type] = []
    subs: list[type] = cls.__subclasses__()
    for sub in subs:
        out += [sub, *_subclasses(sub)]
    return out


def test_every_catalogue_rule_but_the_silence_ones_has_no_dict() -> None:
    rules = [c for c in _subclasses(Rule) if c.__module__.startswith("detectors.")]
    slotted = [c for c in rules if not issubclass(c, SilenceRule)]
    assert len(slotted) > 15
    for cls in slotted:
        assert cls.__dictoffset__ == 0, f"{cls.__qualname__}: its objects would have a __dict__"


def test_the_silence_rules_keep_a_dict_for_their_cached_properties() -> None:
    silence = [c for c in _subclasses(SilenceRule) if c.__module__.startswith("detectors.")]
    assert silence
    for cls in silence:
        cached = [v for v in vars(cls).values() if isinstance(v, functools.cached_property)]
        assert cached and cls.__dictoffset__ != 0, cls.__qualname__
