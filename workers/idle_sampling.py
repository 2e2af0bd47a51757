"""The reconciler's samples of the pool for `comfy_sweep_instance_idle_seconds_total` and
`..._demand_seconds_total` (the arithmetic is `app.domain.idle_time`): each pass reads the
serving instances with the prompts each holds and the queued runs claims may take, two
statements on tables as small as the pool and the sweeps with queued work.

Resolution is the reconciler's interval (RECONCILE_INTERVAL_S): a gap shorter than that is
not seen. Run one reconciler for these counters; a second would count the same time twice.
"""

from __future__ import annotations

import time
from functools import cache

from app.db.base import utc_now
from app.domain.idle_time import IdleClock, PoolSample
from app.metrics import observed
from app.stores import farm_state, instances
from workers.runtime import Runtime

# A pass later than this many intervals (a stalled reconciler) is charged to nobody.
MAX_GAP_INTERVALS = 4
MIN_MAX_GAP_S = 30.0


@cache
def _clock(max_gap_s: float) -> IdleClock:
    """The process's one clock (the reconciler's settings do not change while it runs)."""
    return IdleClock(max_gap_s)


def sample(rt: Runtime) -> None:
    clock = _clock(max(MIN_MAX_GAP_S, MAX_GAP_INTERVALS * rt.settings.reconcile_interval_s))
    with rt.sessions() as session:
        pool = instances.healthy_pool(session, utc_now())
        queued = sum(depth.queued for depth in farm_state.queue_depths(session))
    taken = PoolSample(time.monotonic(), {entry.url: entry.prompts for entry in pool}, queued)
    for share in clock.advance(taken):
        observed.observe_idle(share.instance, share.demand_s, share.idle_s)
