"""The verdicts `bench.load` prints: percentiles and the back-to-normal time after a burst."""

from __future__ import annotations

import pytest

from bench.loadgen import Sample
from bench.loadreport import back_to_normal_s, percentile


def probe(due_s: float, latency_s: float, outcome: str = "200") -> Sample:
    return Sample(
        stream="probe",
        route="status",
        due_s=due_s,
        sent_s=due_s,
        latency_s=latency_s,
        outcome=outcome,
    )


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


def test_back_to_normal_is_the_start_of_the_first_good_streak_after_the_burst() -> None:
    slow = [probe(20 + n / 10, 2.0) for n in range(15)]  # 20.0-21.4 s: still stalled
    failed = [probe(21.5, 0.01, "503")]
    good = [probe(21.6 + n / 10, 0.01) for n in range(10)]
    assert back_to_normal_s([*slow, *failed, *good], burst_end_s=20.0) == pytest.approx(1.6)


def test_probes_during_the_burst_do_not_count_and_a_short_streak_is_not_normal() -> None:
    during = [probe(19 + n / 10, 0.01) for n in range(10)]
    after = [probe(20 + n / 10, 0.01) for n in range(9)] + [probe(20.9, 0.2)]
    assert back_to_normal_s([*during, *after], burst_end_s=20.0) is None


def test_an_api_that_never_stalled_is_normal_at_once() -> None:
    probes = [probe(20 + n / 10, 0.005) for n in range(12)]
    assert back_to_normal_s(probes, burst_end_s=20.0) == 0.0
