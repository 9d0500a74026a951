"""The codec benchmark's sample messages stay decodable (the figures come from
`eldercare bench codecs`, not from this test)."""

from __future__ import annotations

from benchmarks.codecs import CASES, microseconds_per_message


def test_every_benchmark_case_decodes() -> None:
    for topic, payload in CASES.values():
        assert microseconds_per_message(topic, payload, n=3, rounds=1) > 0
