"""`ClusterResult.memory_fit`: a detector worker's baseline and MB per 1,000 homes held,
from the workers measured at their first step only."""

from __future__ import annotations

from benchmarks.cluster import ClusterResult, StepResult


def step(homes: list[int], rss: list[float], fresh: list[bool]) -> StepResult:
    n = len(homes)
    return StepResult(
        workers=n,
        homes_per_worker=homes,
        cpu_cores=[0.0] * n,
        rss_mb=rss,
        mb_per_1000_homes=[0.0] * n,
        lag_ms={},
        console_ms={},
        ingest_cpu_cores=0.0,
        pipeline_cpu_cores=0.0,
        gateway_cpu_cores=0.0,
        fresh=fresh,
    )


def test_fit_reads_only_workers_at_their_first_step() -> None:
    result = ClusterResult(homes=4000, partitions=64, window_s=1.0)
    result.steps = [
        step([4000], [180.0], [True]),  # 100 MB + 20 MB per 1,000
        # The first worker keeps what it held before the rebalance: left out of the fit.
        step([2000, 2000], [175.0, 140.0], [False, True]),
        step([1000, 1000, 1000, 1000], [170.0, 139.0, 120.0, 120.0], [False, False, True, True]),
    ]
    assert result.memory_fit() == (100.0, 20.0)
    assert result.to_json()["detector_memory"] == {
        "baseline_mb": 100.0,
        "mb_per_1000_homes_held": 20.0,
    }


def test_no_fit_without_two_home_counts() -> None:
    result = ClusterResult(homes=2000, partitions=64, window_s=1.0)
    result.steps = [
        step([2000], [150.0], [True]),
        step([1000, 1000], [150.0, 130.0], [False, False]),
    ]
    assert result.memory_fit() is None
