"""Replaying a sweep: a new sweep with exactly its source's runs (resolved values, drawn seeds,
sampled points, wildcard entries: all read from the stored plan, nothing drawn or read again)
on the source's pinned workflow version, optionally with fixed values overridden. Stored,
checked and started by the submission path (`app.services.sweeps.store_sweep`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session

from app.db.models import Sweep
from app.domain.contracts import JsonValue
from app.domain.grid_dimensions import sweep_plan_from_record
from app.domain.plan_overrides import override_fixed
from app.domain.problems import reject
from app.domain.tags import missing_everywhere, split_tags
from app.services import workflows
from app.services.sweeps import NewSweep, store_sweep
from app.services.workflows import PinnedWorkflow
from app.settings import InstanceConfig


def replay_sweep(
    session: Session,
    source: Sweep,
    overrides: Mapping[str, JsonValue],
    *,
    celery: Celery,
    object_info: Mapping[str, Any] | None,
    pool: Sequence[InstanceConfig] = (),
) -> Sweep:
    """Raises SweepRejected (422) for an override that is unknown, invalid or of a value the
    source varies, and for a sweep no instance of `pool` (the configured ones, which its
    stored estimate also counts on) can serve any more."""
    pinned = _pinned(session, source)
    plan = override_fixed(pinned.workflow.contract, sweep_plan_from_record(source.plan), overrides)
    required = split_tags(source.required_tags or "")
    missing = missing_everywhere(required, [instance.tags for instance in pool])
    if missing is not None:
        msg = f"no configured instance has the tags {'+'.join(missing)} this sweep requires"
        raise reject(("requires",), "no_instance_with_tags", msg, list(missing))
    request = dict(source.request)
    request["base"] = {**request.get("base", {}), **overrides}
    new = NewSweep(
        team_id=source.team_id,
        pinned=pinned,
        request=request,
        plan=plan,
        plan_record={**source.plan, "fixed": dict(plan.fixed), "templates": list(plan.templates)},
        required=required,
        priority=source.priority,
        source_sweep_id=source.id,
    )
    return store_sweep(session, new, celery=celery, object_info=object_info, pool=pool)


def _pinned(session: Session, source: Sweep) -> PinnedWorkflow:
    """The version the source ran; for a sweep stored before versions, the latest one of
    its workflow, as a worker would run it."""
    pinned = workflows.pinned_by(session, source)
    if pinned is not None:
        return pinned
    latest = workflows.latest_visible(session, source.team_id, source.workflow)
    if latest is None:
        msg = f"workflow {source.workflow!r} of the source sweep no longer exists"
        raise reject(("workflow",), "unknown_workflow", msg, source.workflow)
    return latest
