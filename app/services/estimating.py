"""A sweep's estimate from its planned runs, the workflow's history on the pool and the queue
ahead of it: the reads here, the computation in `app.domain.estimates`. Reads only; the
caller decides whether the estimate is stored (a submission) or only answered (a dry run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from app.api.schemas.sweeps import SpreadRead, SweepEstimate
from app.domain.assignments import full_assignment
from app.domain.estimates import (
    Estimate,
    PastRun,
    Pool,
    Spread,
    estimate_sweep,
    sweep_work,
    work_of,
    work_shape,
)
from app.domain.model_loads import count_model_loads
from app.domain.ordering import loads_models
from app.registry import Workflow
from app.settings import InstanceConfig
from app.stores import estimates as estimate_store
from app.stores.claims import HELP_BACKLOG
from app.stores.runs import NewRun


def estimate_runs(
    session: Session,
    workflow: Workflow,
    version_id: UUID,
    runs: Sequence[NewRun],
    fixed: Mapping[str, Any],
    *,
    required_tags: Sequence[str],
    priority: int,
    pool: Sequence[InstanceConfig],
    now: datetime,
) -> Estimate:
    """`runs` as `add_runs` would store them, `fixed` the plan's fixed values; `pool` the
    configured instances, of which those with `required_tags` and not drained serve it."""
    shape = work_shape(workflow.graph, workflow.contract)
    work = sweep_work(shape, fixed, (run.own_values for run in runs))
    serving = [i.url for i in pool if set(required_tags) <= set(i.tags)]
    loaded = estimate_store.usable_instances(session, serving)
    loads = 0
    if loads_models(workflow.graph):
        in_order = sorted(runs, key=lambda run: run.dispatch_order)
        keys = [run.model_key for run in in_order]
        loads = count_model_loads(keys, list(loaded.values()), HELP_BACKLOG)
    history = [
        PastRun(
            past.instance,
            past.started_at,
            past.ended_at,
            work_of(shape, full_assignment(past.fixed, past.own_values)),
        )
        for past in estimate_store.recent_runs(session, workflow.name, version_id, list(loaded))
    ]
    ahead = estimate_store.queued_at_or_above(session, priority)
    return estimate_sweep(work, loads, history, Pool(len(loaded), ahead, now))


def estimate_read(estimate: Estimate) -> SweepEstimate:
    """The estimate as answered, and as stored on a submitted sweep (its JSON)."""
    work = estimate.work
    return SweepEstimate(
        runs=work.runs,
        steps=work.steps,
        megapixels=work.megapixels,
        work_unit=work.unit,
        model_loads=estimate.model_loads,
        history_runs=estimate.history_runs,
        seconds_per_unit=_spread(estimate.seconds_per_work, 6),
        gpu_seconds=_spread(estimate.gpu_seconds, 3),
        instances=estimate.instances,
        makespan_s=_rounded(estimate.makespan_s),
        queue_ahead_runs=estimate.queue_ahead_runs,
        queue_wait_s=_rounded(estimate.queue_wait_s),
        finish_at=estimate.finish_at,
        reason=estimate.reason,
    )


def _spread(spread: Spread | None, digits: int) -> SpreadRead | None:
    if spread is None:
        return None
    return SpreadRead(median=round(spread.median, digits), p90=round(spread.p90, digits))


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)
