"""How long each instance sat idle while work waited, from samples of the pool: the
arithmetic behind `comfy_sweep_instance_idle_seconds_total`. Pure, no I/O.

A sample says, at one moment, how many prompts of ours each serving instance holds and
whether any run was queued for claims to take. The time up to the next sample is charged by
the earlier sample's state (a step function): to the instance's demand time when runs were
queued, and to its idle time too when it held none of ours then. Idle over demand is the
fraction of the time work waited during which the instance had nothing of ours, which is
what our dispatch could have filled. A gap longer than `max_gap_s` (the sampler stalled) is
charged to nobody rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PoolSample:
    at_s: float  # a monotonic clock, in seconds
    prompts: Mapping[str, int]  # serving instance -> prompts of ours it holds
    queued: int  # runs claims could take, farm-wide


@dataclass(frozen=True, slots=True)
class IdleShare:
    instance: str
    demand_s: float  # time runs were queued while the instance was serving
    idle_s: float  # the part of it during which the instance held none of our prompts


class IdleClock:
    """Feeds samples in order and hands back what each interval adds per instance."""

    def __init__(self, max_gap_s: float) -> None:
        self.max_gap_s = max_gap_s
        self._last: PoolSample | None = None

    def advance(self, sample: PoolSample) -> list[IdleShare]:
        last, self._last = self._last, sample
        if last is None:
            return []
        return charge(last, sample.at_s - last.at_s, self.max_gap_s)


def charge(state: PoolSample, elapsed_s: float, max_gap_s: float) -> list[IdleShare]:
    """What `elapsed_s` spent in `state` adds to each instance's demand and idle time."""
    if elapsed_s <= 0 or elapsed_s > max_gap_s or state.queued <= 0:
        return []
    return [
        IdleShare(instance, elapsed_s, elapsed_s if prompts == 0 else 0.0)
        for instance, prompts in sorted(state.prompts.items())
    ]


def idle_fraction(demand_s: float, idle_s: float) -> float | None:
    """Idle time over demand time; None when work never waited (nothing to judge)."""
    return None if demand_s <= 0 else min(1.0, idle_s / demand_s)
