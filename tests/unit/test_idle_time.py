"""Idle time while work waited: each interval between samples is charged by the earlier
sample's state, to demand when runs were queued and to idle too when the instance held none
of our prompts; a stalled sampler's gap is charged to nobody."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.domain.idle_time import IdleClock, IdleShare, PoolSample, charge, idle_fraction

A, B = "http://gpu-a:8188", "http://gpu-b:8188"


def test_the_first_sample_charges_nothing() -> None:
    assert IdleClock(max_gap_s=30).advance(PoolSample(0.0, {A: 0}, queued=5)) == []


def test_an_empty_instance_while_runs_wait_is_idle_and_a_busy_one_is_not() -> None:
    clock = IdleClock(max_gap_s=30)
    clock.advance(PoolSample(10.0, {A: 0, B: 2}, queued=5))
    assert clock.advance(PoolSample(15.0, {A: 1, B: 2}, queued=4)) == [
        IdleShare(A, demand_s=5.0, idle_s=5.0),
        IdleShare(B, demand_s=5.0, idle_s=0.0),
    ]


def test_nothing_queued_is_no_demand_however_empty_the_instances() -> None:
    clock = IdleClock(max_gap_s=30)
    clock.advance(PoolSample(0.0, {A: 0}, queued=0))
    assert clock.advance(PoolSample(5.0, {A: 0}, queued=3)) == []


def test_the_interval_is_charged_by_the_state_at_its_start() -> None:
    clock = IdleClock(max_gap_s=30)
    clock.advance(PoolSample(0.0, {A: 2}, queued=3))  # busy, then empty at 5 s
    assert clock.advance(PoolSample(5.0, {A: 0}, queued=3)) == [IdleShare(A, 5.0, 0.0)]
    assert clock.advance(PoolSample(7.0, {A: 0}, queued=3)) == [IdleShare(A, 2.0, 2.0)]


def test_a_gap_longer_than_the_limit_is_charged_to_nobody() -> None:
    clock = IdleClock(max_gap_s=30)
    clock.advance(PoolSample(0.0, {A: 0}, queued=3))
    assert clock.advance(PoolSample(31.0, {A: 0}, queued=3)) == []
    assert clock.advance(PoolSample(36.0, {A: 0}, queued=3)) == [IdleShare(A, 5.0, 5.0)]


def test_an_instance_out_of_the_pool_at_the_start_is_charged_nothing() -> None:
    clock = IdleClock(max_gap_s=30)
    clock.advance(PoolSample(0.0, {A: 0}, queued=3))  # B drained or unhealthy
    assert [share.instance for share in clock.advance(PoolSample(5.0, {A: 0, B: 0}, 3))] == [A]


def test_the_fraction_is_idle_over_demand_and_none_without_demand() -> None:
    assert idle_fraction(demand_s=20.0, idle_s=5.0) == 0.25
    assert idle_fraction(demand_s=0.0, idle_s=0.0) is None


@given(
    st.lists(st.floats(min_value=0, max_value=60), min_size=1, max_size=30),
    st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=30),
    st.lists(st.integers(min_value=0, max_value=2), min_size=1, max_size=30),
)
def test_idle_never_exceeds_demand_nor_demand_the_time_sampled(
    steps: list[float], prompts: list[int], queued: list[int]
) -> None:
    clock, now, demand, idle = IdleClock(max_gap_s=30), 0.0, 0.0, 0.0
    for step, held, waiting in zip(steps, prompts, queued, strict=False):
        now += step
        for share in clock.advance(PoolSample(now, {A: held}, waiting)):
            demand, idle = demand + share.demand_s, idle + share.idle_s
    assert 0.0 <= idle <= demand <= now
    fraction = idle_fraction(demand, idle)
    assert fraction is None or 0.0 <= fraction <= 1.0


def test_charge_ignores_time_going_backwards() -> None:
    assert charge(PoolSample(5.0, {A: 0}, 3), elapsed_s=-1.0, max_gap_s=30) == []
