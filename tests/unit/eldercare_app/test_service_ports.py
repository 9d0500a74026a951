"""Which port a local service asks for first: its standard one, unless the test suite
(processes side by side) said any free port."""

from __future__ import annotations

import pytest

from eldercare_app.local_services import ANY_PORT_ENV, standard


def test_the_standard_port_is_preferred_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ANY_PORT_ENV, raising=False)
    assert standard(8086) == 8086


def test_the_test_suite_asks_for_any_free_port() -> None:
    # Set by tests/conftest.py, for every test process and the subprocesses they start.
    assert standard(8086) is None
