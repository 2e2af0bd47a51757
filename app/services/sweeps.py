"""API-side use cases of sweeps: submit, read, list. They own the commit."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any
from uuid import UUID, uuid4

from celery import Celery
from sqlalchemy.orm import Session

from app.api.schemas.sweeps import QuotaExceeded, SweepCreate, SweepDryRun
from app.db.base import utc_now
from app.db.models import Sweep
from app.domain.assignments import full_assignment
from app.domain.contracts import Contract
from app.domain.estimates import Estimate
from app.domain.expansion import SweepPlan, count_runs, expand_own_values, varied_params
from app.domain.ordering import checkpoint_key, dispatch_order, expensive_params, loader_params
from app.domain.preflight import preflight_sweep
from app.domain.problems import SweepRejected, reject
from app.domain.resolution import SEED_PARAM, AxisRequest, SweepRequest, resolve_plan
from app.domain.sampling import SampledRange, SamplingSpec
from app.domain.states import SweepStatus
from app.domain.tags import join_tags, missing_everywhere
from app.domain.template_plan import Wildcards, referenced_wildcards
from app.queue import START_SWEEP, send_after_commit
from app.registry import Workflow
from app.services import estimating, quotas, webhooks, workflows
from app.settings import InstanceConfig
from app.stores import runs as run_store
from app.stores import sweeps as sweep_store
from app.stores import wildcards as wildcard_store
from app.stores.runs import NewRun

# JSON numbers beyond 2**53 lose precision in most clients; random seeds stay below it.
MAX_RANDOM_SEED = 2**53 - 1


@dataclass(frozen=True, slots=True)
class _Resolved:
    """A submission checked against its workflow's contract, before quotas and preflight."""

    pinned: workflows.PinnedWorkflow
    required: tuple[str, ...]
    request: SweepRequest
    plan: SweepPlan


def submit_sweep(
    session: Session,
    team_id: UUID,
    body: SweepCreate,
    *,
    max_runs: int,
    celery: Celery,
    object_info: Mapping[str, Any] | None,
    pool_tags: Sequence[Sequence[str]] = (),
    pool: Sequence[InstanceConfig] = (),
    webhook: webhooks.NewEndpoint | None = None,
) -> Sweep:
    """Validate, preflight against the pool's node specs, store sweep and runs in one
    transaction, and send one start message after it commits (none for a paused one: it
    starts when it is resumed). `object_info` is None when no instance has answered yet; the
    instances then validate at submission. The sweep pins the workflow's latest version: its
    runs use that content whatever is registered later. `pool_tags` are the configured
    instances' tags: a sweep none of them can serve is refused rather than left queued
    forever. `pool`, the configured instances, is what its stored estimate counts on.
    `webhook`, the checked endpoint its request named, is stored in the same transaction."""
    resolved = _resolve(session, team_id, body, max_runs, pool_tags)
    new = NewSweep(
        team_id=team_id,
        pinned=resolved.pinned,
        # The webhook is a resource of its own, not part of what a replay repeats.
        request=body.model_dump(mode="json", exclude_none=True, exclude={"webhook"}),
        plan=resolved.plan,
        plan_record=_plan_record(resolved.plan, resolved.request),
        required=resolved.required,
        priority=body.priority,
        paused=body.paused,
        webhook=webhook,
    )
    return store_sweep(session, new, celery=celery, object_info=object_info, pool=pool)


@dataclass(frozen=True)
class NewSweep:
    """A checked sweep ready to be stored: a submission's, or a replay's of its source."""

    team_id: UUID
    pinned: workflows.PinnedWorkflow
    request: dict[str, Any]  # as shown and stored
    plan: SweepPlan
    plan_record: dict[str, Any]  # the plan as JSON, with what replaying it needs
    required: tuple[str, ...]
    priority: int
    source_sweep_id: UUID | None = None
    paused: bool = False  # stored paused: nothing of it runs until it is resumed
    webhook: webhooks.NewEndpoint | None = None  # the sweep's own endpoint, if it named one


def store_sweep(
    session: Session,
    new: NewSweep,
    *,
    celery: Celery,
    object_info: Mapping[str, Any] | None,
    pool: Sequence[InstanceConfig] = (),
) -> Sweep:
    """Check the team's caps and preflight, store sweep, runs and estimate in one
    transaction, and send one start message after it commits (none for a paused one)."""
    quotas.check_submission(session, new.team_id, new.priority, count_runs(new.plan))
    _preflight(new.pinned, new.plan, object_info)
    runs = ordered_runs(new.pinned.workflow, new.plan)
    estimate = _estimate(session, new.pinned, new.plan, new.required, runs, new.priority, pool)
    sweep = sweep_store.add_sweep(
        session,
        sweep_id=uuid4(),
        team_id=new.team_id,
        workflow=new.pinned.workflow.name,
        workflow_version_id=new.pinned.version_id,
        request=new.request,
        plan=new.plan_record,
        total=count_runs(new.plan),
        required_tags=join_tags(new.required),
        priority=new.priority,
        estimate=estimating.estimate_read(estimate).model_dump(mode="json"),
        source_sweep_id=new.source_sweep_id,
        status=SweepStatus.PAUSED if new.paused else SweepStatus.PENDING,
    )
    run_store.add_runs(session, sweep.id, runs)
    if new.webhook is not None:
        webhooks.store_endpoint(session, new.webhook, new.team_id, sweep_id=sweep.id)
    if not new.paused:
        send_after_commit(session, celery, START_SWEEP, [str(sweep.id)])
    session.commit()
    return sweep


def dry_run_sweep(
    session: Session,
    team_id: UUID,
    body: SweepCreate,
    *,
    max_runs: int,
    object_info: Mapping[str, Any] | None,
    pool: Sequence[InstanceConfig],
) -> SweepDryRun:
    """What `submit_sweep` would do, without storing or sending anything: the same 422s for
    bad input, the caps it would break as a list rather than a refusal, and its estimate."""
    pool_tags = [instance.tags for instance in pool]
    resolved = _resolve(session, team_id, body, max_runs, pool_tags)
    pinned, plan = resolved.pinned, resolved.plan
    _preflight(pinned, plan, object_info)
    runs = ordered_runs(pinned.workflow, plan)
    estimate = _estimate(session, pinned, plan, resolved.required, runs, body.priority, pool)
    exceeded = quotas.exceeded_quotas(session, team_id, body.priority, len(runs))
    return SweepDryRun(
        **estimating.estimate_read(estimate).model_dump(),
        workflow=resolved.pinned.workflow.name,
        exceeds=[QuotaExceeded(quota=e.quota, limit=e.limit, value=e.value) for e in exceeded],
    )


def _resolve(
    session: Session,
    team_id: UUID,
    body: SweepCreate,
    max_runs: int,
    pool_tags: Sequence[Sequence[str]],
) -> _Resolved:
    pinned = workflows.latest_visible(session, team_id, body.workflow)
    if pinned is None:
        known = ", ".join(workflows.visible_names(session, team_id))
        msg = f"no workflow named {body.workflow!r}; known: {known}"
        raise reject(("workflow",), "unknown_workflow", msg, body.workflow)
    workflow = pinned.workflow
    required = _required_tags(body, workflow.contract, pool_tags)
    request = _domain_request(body, workflow.contract)
    request = replace(request, wildcards=_wildcards(session, team_id, request))
    plan = resolve_plan(workflow.contract, request, max_runs)
    return _Resolved(pinned, required, request, plan)


def _preflight(
    pinned: workflows.PinnedWorkflow, plan: SweepPlan, object_info: Mapping[str, Any] | None
) -> None:
    if object_info is None:
        return
    workflow = pinned.workflow
    problems = preflight_sweep(workflow.graph, workflow.contract, plan, object_info)
    if problems:
        raise SweepRejected(problems)


def _estimate(
    session: Session,
    pinned: workflows.PinnedWorkflow,
    plan: SweepPlan,
    required: tuple[str, ...],
    runs: Sequence[NewRun],
    priority: int,
    pool: Sequence[InstanceConfig],
) -> Estimate:
    return estimating.estimate_runs(
        session,
        pinned.workflow,
        pinned.version_id,
        runs,
        plan.fixed,
        required_tags=required,
        priority=priority,
        pool=pool,
        now=utc_now(),
    )


def _required_tags(
    body: SweepCreate, contract: Contract, pool_tags: Sequence[Sequence[str]]
) -> tuple[str, ...]:
    """The contract's and the request's tags, if some configured instance has them all."""
    required = tuple(sorted({*contract.requires, *body.requires}))
    missing = missing_everywhere(required, pool_tags)
    if missing is None:
        return required
    from_request = set(missing) & set(body.requires)
    shown = "+".join(missing)
    if from_request:
        loc: tuple[str, ...] = ("requires",)
        msg = f"no configured instance has the tags {shown} this sweep requires"
    else:
        loc = ("workflow",)
        msg = (
            f"no configured instance has the tags {shown} that workflow {contract.workflow!r} "
            f"requires (x-comfy-requires)"
        )
    raise reject(loc, "no_instance_with_tags", msg, list(missing))


def ordered_runs(workflow: Workflow, plan: SweepPlan) -> list[NewRun]:
    """Each run with its own values (what it varies; the plan keeps the fixed ones), its
    place in the cache-aware order and the key of the models it loads."""
    expanded = list(enumerate(expand_own_values(plan)))
    varied = varied_params(plan)
    # A fixed parameter has one value in the whole sweep and cannot split it.
    expensive = [n for n in expensive_params(workflow.contract, workflow.graph) if n in varied]
    loaders = loader_params(workflow.contract, workflow.graph)
    varied_loaders = [name for name in loaders if name in varied]
    order = dispatch_order(expanded, expensive)
    position = [0] * len(expanded)
    for n, index in enumerate(order):
        position[index] = n
    # Few distinct model combinations among many runs: hash each combination once, over
    # the full assignment (a fixed checkpoint is part of the key).
    model_keys: dict[tuple[str, ...], str] = {}
    runs = []
    for index, own in expanded:
        models = tuple(repr(own.get(name)) for name in varied_loaders)
        if models not in model_keys:
            model_keys[models] = checkpoint_key(full_assignment(plan.fixed, own), loaders)
        runs.append(NewRun(index, own, position[index], model_keys[models]))
    return runs


def _wildcards(session: Session, team_id: UUID, request: SweepRequest) -> Wildcards:
    """The team's lists the request mentions, read once here so the core stays pure; their
    entries end up in the stored plan, so a replay never reads the lists again."""
    texts = [*request.base.values()]
    for axis in request.axes:
        texts += [axis.values] if isinstance(axis.values, str) else axis.values
    return wildcard_store.entries_of(session, team_id, referenced_wildcards(texts))


def _domain_request(body: SweepCreate, contract: Contract) -> SweepRequest:
    return SweepRequest(
        base=dict(body.base),
        axes=tuple(AxisRequest(a.param, a.values) for a in body.axes),
        mode=body.mode,
        seeds=_seeds(body, contract),
        sampling=_sampling(body),
    )


def _seeds(body: SweepCreate, contract: Contract) -> tuple[int, ...]:
    if body.seeds is None:
        return ()
    if body.seeds.start is not None:
        return tuple(range(body.seeds.start, body.seeds.start + body.seeds.count))
    parameter = contract.parameters.get(SEED_PARAM)
    low = int(parameter.minimum or 0) if parameter else 0
    high = int(min(parameter.maximum or MAX_RANDOM_SEED, MAX_RANDOM_SEED)) if parameter else 0
    # Drawn here, once, and stored in the plan: replaying the sweep reuses them exactly.
    return tuple(low + secrets.randbelow(high - low + 1) for _ in range(body.seeds.count))


def _sampling(body: SweepCreate) -> SamplingSpec | None:
    if body.sampling is None:
        return None
    seed = body.sampling.seed if body.sampling.seed is not None else secrets.randbelow(2**32)
    ranges = tuple(
        SampledRange(name, r.min, r.max, r.step) for name, r in body.sampling.ranges.items()
    )
    return SamplingSpec(body.sampling.strategy, body.sampling.samples, seed, ranges)


def _plan_record(plan: SweepPlan, request: SweepRequest) -> dict[str, Any]:
    """What expansion used, as JSON: enough to replay the sweep without the random draws."""
    return {
        "fixed": dict(plan.fixed),
        "axes": [{"param": a.param, "values": list(a.values)} for a in plan.axes],
        "mode": plan.mode,
        "seed_param": plan.seed_param,
        "seeds": list(plan.seeds),
        "samples": [dict(s) for s in plan.samples],
        "sampling": None if request.sampling is None else asdict(request.sampling),
        "templates": list(plan.templates),
    }


def get_sweep(session: Session, team_id: UUID, sweep_id: UUID) -> Sweep | None:
    return sweep_store.get_sweep(session, sweep_id, team_id)
