"""How many examples a property test draws: its own count in the full suite (`make
test`), a small budget in the fast tier (`make unit` loads the Hypothesis profile
`fast`, registered in tests/conftest.py), so the tier runs in seconds and a property
still gets exercised on every commit."""

from __future__ import annotations

from hypothesis import settings

FAST_PROFILE = "fast"
FAST_EXAMPLES = 10


def examples(full: int) -> int:
    """`full` examples, or at most the fast profile's budget when that profile is loaded."""
    if settings.get_current_profile_name() == FAST_PROFILE:
        return min(full, FAST_EXAMPLES)
    return full
