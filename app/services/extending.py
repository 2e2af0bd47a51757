"""Extending a sweep: more values on its axes, a new axis or more seeds, validated as a
submission is. Only the new cells become runs, indexed after the existing ones; every
existing run keeps its index, its assignment and its outputs, and a finished one is never
executed again. The sweep is put back to work (`app.services.reopening`) and its grids are
rebuilt with every cell when the new runs end.

Existing runs keep their indices rather than being renumbered to their new positions:
outputs are stored under `runs/<index>/` and served at `/runs/<index>/outputs/<n>`, so a
renumbered run would break links already handed out and a new run could write into an old
run's directory. The grid of an extended sweep places runs by assignment instead
(`app.domain.extension.CellLocator`, used by `workers.gridding`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from app.api.errors import Conflict
from app.api.schemas.sweeps import SweepExtend
from app.db.models import Sweep
from app.domain.expansion import count_runs
from app.domain.extension import (
    EXTENDED,
    AxisExtension,
    Extension,
    ExtensionRequest,
    extend_plan,
    next_seeds,
)
from app.domain.grid_dimensions import sweep_plan_from_record
from app.domain.preflight import preflight_sweep
from app.domain.problems import SweepRejected
from app.domain.states import SweepStatus
from app.registry import Workflow
from app.services import quotas, reopening
from app.services import workflows as workflow_service
from app.services.sweeps import ordered_runs
from app.stores import journal
from app.stores import runs as run_store
from app.stores import sweeps as sweep_store
from app.stores.runs import NewRun


def extend_sweep(
    session: Session,
    sweep: Sweep,
    body: SweepExtend,
    *,
    max_runs: int,
    celery: Celery,
    object_info: Mapping[str, Any] | None,
) -> int:
    """Store the new runs and the extended plan in one transaction; returns how many runs
    were added. Raises SweepRejected (422) for a request that cannot apply, Conflict (409)
    for a sweep whose state forbids it."""
    _check_status(sweep)
    workflow = _pinned_workflow(session, sweep)
    plan = sweep_plan_from_record(sweep.plan)
    seeds = () if body.seeds is None else next_seeds(plan, body.seeds.count, body.seeds.start)
    axes = tuple(AxisExtension(axis.param, axis.values) for axis in body.axes)
    extension = extend_plan(workflow.contract, plan, ExtensionRequest(axes, seeds), max_runs)
    total = count_runs(extension.plan)
    quotas.check_extension(session, sweep.team_id, total, len(extension.added))
    if object_info is not None:
        problems = preflight_sweep(workflow.graph, workflow.contract, extension.plan, object_info)
        if problems:
            raise SweepRejected(problems)
    # The plan first: its compare-and-set holds the sweep row, so a concurrent extension
    # waits here and then finds the count moved, rather than colliding on new indices. This
    # takes no run row's lock, so it cannot deadlock with workers (runs, then the sweep).
    was_total, record = sweep.total, _plan_record(sweep.plan, extension, body)
    if not sweep_store.replace_plan(session, sweep.id, was_total, record, total):
        session.rollback()
        raise Conflict(f"sweep {sweep.id} was extended meanwhile; read it and try again")
    added = run_store.add_runs(session, sweep.id, _new_runs(workflow, extension, was_total))
    journal.runs_queued(
        session, sweep.team_id, sweep.id, range(was_total, was_total + added), "extend"
    )
    reopening.reopen_sweep(session, celery, sweep.id)
    session.commit()
    return len(extension.added)


def _check_status(sweep: Sweep) -> None:
    if sweep.status == SweepStatus.CANCELLED:
        raise Conflict(
            f"sweep {sweep.id} is cancelled: it cannot be extended; retry its cancelled "
            "runs (POST .../retry) or submit a new sweep"
        )
    if sweep.status == SweepStatus.FINALIZING:
        raise Conflict(f"sweep {sweep.id} is finalizing; try again once it has ended")


def _pinned_workflow(session: Session, sweep: Sweep) -> Workflow:
    pinned = workflow_service.pinned_by(session, sweep)
    if pinned is None:
        raise Conflict(f"sweep {sweep.id} pins no stored workflow version; it cannot be extended")
    return pinned.workflow


def _new_runs(workflow: Workflow, extension: Extension, first_index: int) -> list[NewRun]:
    """The new cells as runs indexed after the existing ones, with the dispatch order and
    model key they have in the whole extended sweep's cache-aware order."""
    every = ordered_runs(workflow, extension.plan)
    return [
        replace(every[position], index=first_index + n)
        for n, position in enumerate(extension.positions)
    ]


def _plan_record(
    stored: Mapping[str, Any], extension: Extension, body: SweepExtend
) -> dict[str, Any]:
    plan = extension.plan
    return {
        **stored,
        "fixed": dict(plan.fixed),
        "axes": [{"param": a.param, "values": list(a.values)} for a in plan.axes],
        "seeds": list(plan.seeds),
        EXTENDED: True,
        # What each extension asked for, in order, beside the request as first submitted.
        "extensions": [
            *stored.get("extensions", []),
            body.model_dump(mode="json", exclude_none=True),
        ],
    }
