"""Choosing the queued run a free instance slot takes: fairness picks the sweep
(`app.domain.fair_share`), model affinity picks the run within it.

Every statement here reads a bounded number of rows however many runs are queued: the
sweeps with queued work come from `active_sweeps` (one row per sweep), running runs from a
partial index as small as the work in flight, and runs from LIMIT 1 probes of indexes that
hand over the next row in order (no sort). Tests EXPLAIN each statement (tests/db).

Locks, always in this order: the instance (the caller's), then one team row, waited for, so
a team's claims run one at a time: its running cap holds under concurrent claimers, and a
claimer sees which models the team's last claim just planned; other teams' rows only with
SKIP LOCKED, so two claimers never wait on each other in a cycle. Run rows SKIP LOCKED.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import ActiveSweep, Instance, Run, Sweep, Team
from app.domain.fair_share import Share, Waiting, serving_order
from app.domain.states import RunStatus, SweepStatus
from app.stores import sweeps
from app.stores.eligibility import sweep_fits_instance
from app.stores.runs import FAILED_ON

# How many of a sweep's distinct models a claim looks at when seeking one no other instance
# serves; a sweep of more models than this takes the rest in dispatch order.
MODELS_LOOKED_AT = 32
# Queued runs per instance already serving a model above which an instance holding another
# model loads it too, rather than leave its slots idle.
HELP_BACKLOG = 10


def next_run(
    session: Session,
    instance: str,
    model_key: str | None,
    avoid: str | None,
    instance_tags: Iterable[str] = (),
) -> Run | None:
    """The queued run `instance` (holding `model_key`) should take next, locked; None when
    nothing is claimable for it. With `avoid` (the instance's URL), never a run whose last
    attempt failed there; only runs of sweeps whose required tags the instance has."""
    waiting, shares, pending = waiting_sweeps(session, instance_tags)
    waited = False
    for turn in serving_order(waiting, shares):
        locked = _lock_team(session, turn.team_id, wait=not waited)
        if locked is None:
            continue  # another claimer is serving that team right now
        waited = True
        if (
            locked.max_running is not None
            and _running_of(session, turn.team_id) >= locked.max_running
        ):
            continue  # reached its cap since the shares were read
        for sweep_id in turn.sweeps:
            run = run_for(session, sweep_id, instance, model_key or "", avoid)
            if run is not None:
                if sweep_id in pending:
                    start_pending(session, sweep_id)
                return run
    return None


def start_pending(session: Session, sweep_id: UUID) -> None:
    """pending → running with its first claimed run; its start message then only hints."""
    now = utc_now()
    moved = sweeps.move_sweep(
        session, sweep_id, [SweepStatus.PENDING], SweepStatus.RUNNING, started_at=now
    )
    if moved:
        sweeps.mark_hinted(session, sweep_id, now)


def waiting_sweeps(
    session: Session, instance_tags: Iterable[str] = ()
) -> tuple[list[Waiting], dict[UUID, Share], set[UUID]]:
    """The sweeps whose queued runs an instance with `instance_tags` may claim, the standing
    of their teams, and which of the sweeps are not started yet."""
    query = (
        sa.select(
            ActiveSweep.sweep_id,
            ActiveSweep.team_id,
            ActiveSweep.priority,
            ActiveSweep.created_at,
            Team.weight,
            Team.max_running,
            Sweep.status,
        )
        .join(Team, Team.id == ActiveSweep.team_id)
        .join(Sweep, Sweep.id == ActiveSweep.sweep_id)
        .where(ActiveSweep.active.is_(True), sweep_fits_instance(instance_tags))
    )
    rows = session.execute(query).all()
    if not rows:
        return [], {}, set()
    running = Counter(session.scalars(running_teams_query()))
    waiting = [Waiting(row.sweep_id, row.team_id, row.priority, row.created_at) for row in rows]
    shares = {row.team_id: Share(row.weight, row.max_running, running[row.team_id]) for row in rows}
    pending = {row.sweep_id for row in rows if row.status == SweepStatus.PENDING}
    return waiting, shares, pending


def running_teams_query() -> sa.Select[UUID]:
    """The team of each running run: as many rows as runs in flight, read through their
    partial index, and counted by the caller. Neither a GROUP BY (a sort) nor a filter on
    the team (a plan that walks the team's whole history of sweeps)."""
    return (
        sa.select(Sweep.team_id)
        .select_from(Run)
        .join(Sweep, Sweep.id == Run.sweep_id)
        .where(Run.status == RunStatus.RUNNING)
    )


@dataclass(frozen=True, slots=True)
class _LockedTeam:
    max_running: int | None


def _lock_team(session: Session, team_id: UUID, wait: bool) -> _LockedTeam | None:
    """Lock the team's row (None when skipped: another claimer holds it) and read its cap
    under the lock. FOR NO KEY UPDATE: it excludes other claimers but not the key-share
    locks that inserting a sweep or an active_sweeps row takes on its team."""
    query = (
        sa.select(Team.id, Team.max_running)
        .where(Team.id == team_id)
        .with_for_update(key_share=True, skip_locked=not wait)
    )
    row = session.execute(query).first()
    return None if row is None else _LockedTeam(row.max_running)


def _running_of(session: Session, team_id: UUID) -> int:
    """The team's running runs, counted afresh: the shares may predate its last claim."""
    return sum(1 for team in session.scalars(running_teams_query()) if team == team_id)


def models_elsewhere(session: Session, sweep_id: UUID, instance: str) -> Counter[str]:
    """How many other healthy instances serve each model for the sweep: hold it (or were
    just routed to it) and run one of the sweep's runs now, or run nothing at all (between
    two runs, they will claim again in a moment). Read under the team's lock, so it includes
    what the team's previous claim planned. An instance busy with other sweeps does not
    count, so its model's last runs here are not left waiting for it."""
    return Counter(session.scalars(serving_models_query(sweep_id, instance)))


def serving_models_query(sweep_id: UUID, instance: str) -> sa.Select[str | None]:
    """The models of the other instances serving the sweep. The runs read are running ones:
    the sweep's off the dispatch-order index's (sweep_id, status), all of them off their
    partial index, as many as there are runs in flight."""
    on_sweep = sa.select(Run.instance).where(
        Run.sweep_id == sweep_id, Run.status == RunStatus.RUNNING, Run.instance != instance
    )
    busy = sa.select(Run.instance).where(Run.status == RunStatus.RUNNING, Run.instance.is_not(None))
    return sa.select(Instance.model_key).where(
        Instance.url != instance,
        Instance.healthy.is_(True),
        Instance.model_key.is_not(None),
        Instance.model_key != "",
        sa.or_(Instance.url.in_(on_sweep), Instance.url.not_in(busy)),
    )


def run_for(
    session: Session, sweep_id: UUID, instance: str, model_key: str, avoid: str | None
) -> Run | None:
    """The sweep's run for an instance holding `model_key`: its next run of that model while
    there is one; else the next in dispatch order unless another instance serves that model;
    else the first run, by dispatch order, of a model nobody serves; else a model another
    instance serves, if this one has none loaded or that model's backlog is worth a load."""
    if model_key:
        same = session.scalars(model_probe(sweep_id, model_key, avoid)).first()
        if same is not None:
            return same
    head = session.scalars(head_probe(sweep_id, avoid)).first()
    if head is None:
        return None
    held = models_elsewhere(session, sweep_id, instance)
    if head.model_key not in held:
        return head
    firsts: dict[str, int] = {}
    for key in session.scalars(models_query(sweep_id)):
        if key not in held and key != model_key:
            order = session.scalar(model_order_probe(sweep_id, key, avoid))
            if order is not None:
                firsts[key] = order
    if not firsts:
        return head if not model_key or _worth_a_load(session, head, held, avoid) else None
    free = min(firsts, key=lambda key: (firsts[key], key))
    return session.scalars(model_probe(sweep_id, free, avoid)).first() or head


def _worth_a_load(session: Session, head: Run, held: Mapping[str, int], avoid: str | None) -> bool:
    """Whether an instance should load a model others already serve, to help with its
    backlog. Near a sweep's end it waits instead: finishing the last few runs costs less
    than loading a checkpoint again, and the instances serving it are about to finish."""
    enough = HELP_BACKLOG * held[head.model_key]
    backlog = session.scalar(backlog_query(head.sweep_id, head.model_key, avoid, enough))
    return (backlog or 0) >= enough


def backlog_query(sweep_id: UUID, model_key: str, avoid: str | None, upto: int) -> sa.Select[int]:
    """How many queued runs of one model the sweep has, counting no further than `upto`."""
    some = sa.select(Run.id).where(*_of_model(sweep_id, model_key, avoid)).limit(upto)
    return sa.select(sa.func.count()).select_from(some.subquery())


def model_probe(sweep_id: UUID, model_key: str, avoid: str | None) -> sa.Select[Run]:
    """The sweep's next queued run of one model, locked, straight off ix_runs_queued_model."""
    return _locked(sa.select(Run).where(*_of_model(sweep_id, model_key, avoid)))


def model_order_probe(sweep_id: UUID, model_key: str, avoid: str | None) -> sa.Select[int]:
    """Where the sweep's next queued run of one model stands in dispatch order; nothing
    locked, since the claim may prefer another model."""
    query = sa.select(Run.dispatch_order).where(*_of_model(sweep_id, model_key, avoid))
    return query.order_by(Run.dispatch_order).limit(1)


def _of_model(
    sweep_id: UUID, model_key: str, avoid: str | None
) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        Run.sweep_id == sweep_id,
        Run.status == RunStatus.QUEUED,
        Run.model_key == model_key,
        *_not_failed_on(avoid),
    )


def head_probe(sweep_id: UUID, avoid: str | None) -> sa.Select[Run]:
    """The sweep's next queued run in dispatch order, locked, off
    ix_runs_sweep_id_status_dispatch_order."""
    match = (Run.sweep_id == sweep_id, Run.status == RunStatus.QUEUED, *_not_failed_on(avoid))
    return _locked(sa.select(Run).where(*match))


def models_query(sweep_id: UUID) -> sa.Select[str]:
    """The sweep's distinct models with queued runs, up to MODELS_LOOKED_AT: a loose index
    scan (each step one probe for the next larger key), not a scan of its runs."""
    # min() rather than ORDER BY ... LIMIT 1: SQLite refuses LIMIT inside a compound
    # select, and both databases answer min() over an index's column from its first entry.
    queued = (Run.sweep_id == sweep_id, Run.status == RunStatus.QUEUED)
    first = sa.select(sa.func.min(Run.model_key).label("key")).where(*queued)
    keys = first.cte("model_keys", recursive=True)
    following = (
        sa.select(sa.func.min(Run.model_key))
        .where(*queued, Run.model_key > keys.c.key)
        .scalar_subquery()
    )
    keys = keys.union_all(sa.select(following).where(keys.c.key.is_not(None)))
    return sa.select(keys.c.key).where(keys.c.key.is_not(None)).limit(MODELS_LOOKED_AT)


def _locked(query: sa.Select[Run]) -> sa.Select[Run]:
    """The first run in dispatch order, skipping rows another transaction holds."""
    return query.order_by(Run.dispatch_order).limit(1).with_for_update(of=Run, skip_locked=True)


def _not_failed_on(instance: str | None) -> tuple[sa.ColumnElement[bool], ...]:
    if instance is None:
        return ()
    failed_on = sa.func.coalesce(Run.error[FAILED_ON].as_string(), "")
    return (failed_on != instance,)
