"""Choosing the queued run a free instance slot takes: fairness picks the sweep
(`app.domain.fair_share`), model affinity picks the run within it.

Every statement here reads a bounded number of rows however many runs are queued: the
sweeps with queued work come from `active_sweeps` (one row per sweep), running runs from a
partial index as small as the work in flight, and runs from LIMIT 1 probes of indexes that
hand over the next row in order (no sort). Tests EXPLAIN each statement (tests/db).

Locks, always in this order (`workers.dispatching` takes the first):
1. the caller's instance row, waited for: one claimer at a time fills an instance's slots;
2. one team row, waited for, so a team's claims run one at a time; other teams' rows only
   with SKIP LOCKED;
3. run rows, SKIP LOCKED;
4. the sweep row of the run it takes, waited for, in the statement that starts the run
   (`runs.start_run`).
The sweep's row is what makes a claim agree with a pause or a cancellation: they update it,
so a claim reads the sweep's status under its lock after choosing a run. A pause committed
since the claim read `active_sweeps` is seen there, and the run is left queued; a pause that
comes later waits for the claim's commit, so the run started before the pause took effect.
A claim waits for at most one instance and then one team, and never waits for an instance
while it holds a team (the dispatcher commits before it tries another instance), so two
claimers never wait on each other in a cycle.

The team's lock is what makes a claim see its team's last claim: the running cap holds
under concurrent claimers, and so does the choice of a model. A sweep belongs to one team,
so every claim that chooses a model for a sweep (`run_for`) chooses under that team's lock,
and writes its choice (the run it starts, and the model its instance is routed to,
`instances.set_model_key`) in the same transaction, whose commit releases the lock. A claim
for another instance waits for that commit and then reads the choice (READ COMMITTED: each
statement sees what committed before it), so two instances freeing up at once never both
take a model that neither serves yet: tests/db/test_fair_claims.py plays that order.

A handover (`handover_run`, `workers.refilling`) is a claim made in the transaction that
records the run whose slot it takes: it locks the instance row, then the recorded run's row
and its sweep's (a record's order), then takes a run of that same sweep, SKIP LOCKED, whose
sweep row it holds already. It takes no team lock, as it needs none: the team's running
count is the same before and after its commit, and the instance keeps its model. It waits
only where a record does, so it adds no wait to the cycles above.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import ActiveSweep, Instance, Run, Sweep, Team
from app.domain.fair_share import Share, Waiting, serving_order
from app.domain.states import STARTABLE, RunStatus, SweepStatus
from app.stores import runs, sweeps
from app.stores.eligibility import SWEEP_FITS, fits_params
from app.stores.runs import FAILED_ON, Claim

# How many of a sweep's distinct models a claim looks at when seeking one no other instance
# serves; a sweep of more models than this takes the rest in dispatch order.
MODELS_LOOKED_AT = 32
# Queued runs per instance already serving a model above which an instance holding another
# model loads it too, rather than leave its slots idle.
HELP_BACKLOG = 10


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A queued run a claim has locked (or looked at): what it needs to start it."""

    id: UUID
    sweep_id: UUID
    model_key: str
    failed_on: str = ""  # a retry's: the instance its last attempt failed on, which it avoids


@dataclass(frozen=True, slots=True)
class Standing:
    """The sweeps an instance may claim from, their teams' shares, and which of the sweeps
    are not started yet."""

    waiting: list[Waiting]
    shares: dict[UUID, Share]
    pending: set[UUID]


@dataclass(frozen=True, slots=True)
class InFlight:
    """The prompts each instance holds now, and the standing of the sweeps waiting for the
    instance that read them, read in the same statement."""

    prompts: Counter[str]
    standing: Standing


@dataclass(frozen=True, slots=True)
class Starting:
    """Whose claim a run started by `next_run` is, and until when its lease runs."""

    task_id: str
    lease_until: datetime


def next_run(
    session: Session,
    instance: str,
    model_key: str | None,
    avoid: str | None,
    starting: Starting,
    instance_tags: Iterable[str] = (),
    flight: InFlight | None = None,
) -> Claim | None:
    """The queued run `instance` (holding `model_key`) should take next, started on it as
    `starting` says (`runs.start_run`); None when nothing is claimable for it. With `avoid`
    (the instance's URL), never a run whose last attempt failed there; only runs of sweeps
    whose required tags the instance has. `flight`: the runs in flight and the sweeps
    waiting, if the caller has just read them (`in_flight`, with the same tags)."""
    standing = waiting_sweeps(session, instance_tags) if flight is None else flight.standing
    waited = False
    for turn in serving_order(standing.waiting, standing.shares):
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
            if run is None:
                continue
            if sweep_id in standing.pending:
                start_pending(session, sweep_id)  # a compare-and-set: not if it was cancelled
            claim = runs.start_run(
                session, run.id, instance, starting.task_id, starting.lease_until
            )
            if claim is None:
                continue  # paused or cancelled since `active_sweeps` was read
            return claim
    return None


def handover_run(
    session: Session,
    instance: str,
    model_key: str,
    avoid: str | None,
    starting: Starting,
    sweep_id: UUID,
    flight: InFlight,
) -> Claim | None:
    """The run that takes over the slot of `sweep_id`'s run that just ended on `instance`,
    in the transaction that recorded that run, which holds the instance's row and the
    sweep's (`workers.refilling`); None where `next_run` might choose otherwise, and the
    caller claims as usual. It is `next_run`'s choice: fair share serves that sweep first,
    and the instance's model has a run in it.

    No team lock: the slot passes from one of the team's runs to another in one commit, so
    its running count never moves (no cap can be crossed) and no other claimer ever sees the
    slot free; and the instance keeps its model, so no choice of a model is made. The only
    locks taken are the run's (SKIP LOCKED) and the sweep's, which the record holds."""
    if not model_key:
        return None  # `run_for` weighs the models others serve: claimed as usual
    first = next(iter(serving_order(flight.standing.waiting, flight.standing.shares)), None)
    if first is None or first.sweeps[0] != sweep_id or sweep_id in flight.standing.pending:
        return None
    run = next_of_model(session, sweep_id, model_key, avoid)
    if run is None:
        return None
    return runs.start_run(session, run.id, instance, starting.task_id, starting.lease_until)


def start_pending(session: Session, sweep_id: UUID) -> None:
    """pending → running with its first claimed run; its start message then only hints."""
    now = utc_now()
    moved = sweeps.move_sweep(session, sweep_id, STARTABLE, SweepStatus.RUNNING, started_at=now)
    if moved:
        sweeps.mark_hinted(session, sweep_id, now)


# Every statement of a claim is a Core statement on the tables, built once here with bind
# parameters: a claim neither rebuilds them nor loads ORM objects, and SQLAlchemy's compiled
# cache hits. What they read is unchanged; tests EXPLAIN each one (tests/db).
_runs = cast(sa.Table, Run.__table__)
_sweeps = cast(sa.Table, Sweep.__table__)
_teams = cast(sa.Table, Team.__table__)
_active = cast(sa.Table, ActiveSweep.__table__)
_instances = cast(sa.Table, Instance.__table__)

WAITING = (
    sa.select(
        _active.c.sweep_id,
        _active.c.team_id,
        _active.c.priority,
        _active.c.created_at,
        _teams.c.weight,
        _teams.c.max_running,
        (_sweeps.c.status == SweepStatus.PENDING).label("pending"),
    )
    .select_from(_active)
    .join(_teams, _teams.c.id == _active.c.team_id)
    .join(_sweeps, _sweeps.c.id == _active.c.sweep_id)
    .where(_active.c.active.is_(True), SWEEP_FITS)
)


def waiting_sweeps(session: Session, instance_tags: Iterable[str] = ()) -> Standing:
    """The sweeps whose queued runs an instance with `instance_tags` may claim, the standing
    of their teams, and which of the sweeps are not started yet."""
    rows = session.execute(WAITING, fits_params(instance_tags)).all()
    if not rows:
        return Standing([], {}, set())
    return _standing_of(rows, Counter(session.scalars(RUNNING_TEAMS)))


def _standing_of(rows: Iterable[Sequence[Any]], running: Counter[UUID]) -> Standing:
    """The standing from WAITING's rows (their first seven columns) and each team's
    running runs."""
    standing = Standing([], {}, set())
    for sweep_id, team_id, priority, created_at, weight, max_running, not_started, *_ in rows:
        standing.waiting.append(Waiting(sweep_id, team_id, priority, created_at))
        if team_id not in standing.shares:
            standing.shares[team_id] = Share(weight, max_running, running[team_id])
        if not_started:
            standing.pending.add(sweep_id)
    return standing


# The team of each running run: as many rows as runs in flight, read through their partial
# index, and counted by the caller. Neither a GROUP BY (a sort) nor a filter on the team (a
# plan that walks the team's whole history of sweeps).
RUNNING_TEAMS = (
    sa.select(_sweeps.c.team_id)
    .select_from(_runs)
    .join(_sweeps, _sweeps.c.id == _runs.c.sweep_id)
    .where(_runs.c.status == RunStatus.RUNNING)
)


def running_teams_query() -> sa.Select[UUID]:
    return RUNNING_TEAMS


def _in_flight_and_waiting() -> sa.CompoundSelect[*tuple[Any, ...]]:
    """The running runs with their team and instance, each holding a slot of it
    (`runs.holding_prompt`): the same rows as RUNNING_TEAMS, so a claim learns both its
    instance's free slots and every team's share in one read; and in the same statement
    the sweeps waiting (WAITING). Each part is what a statement of its own read before,
    the one after the other, both after the instance lock; together they cost one round
    trip, and read the same moment. A waiting sweep's row has a sweep_id and no instance,
    a running run's the reverse."""
    waiting = WAITING.add_columns(_typed_null(_runs.c.instance).label("instance"))
    running = (
        sa.select(
            _typed_null(_active.c.sweep_id),
            _sweeps.c.team_id,
            *(_typed_null(column) for column in list(WAITING.selected_columns)[2:]),
            _runs.c.instance,
        )
        .select_from(_runs)
        .join(_sweeps, _sweeps.c.id == _runs.c.sweep_id)
        .where(_runs.c.status == RunStatus.RUNNING)
    )
    return sa.union_all(waiting, running)


def _typed_null(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    # Typed, as Postgres infers a UNION's column types from its parts.
    return sa.cast(sa.null(), column.type)


IN_FLIGHT_AND_WAITING = _in_flight_and_waiting()


def in_flight(session: Session, instance_tags: Iterable[str] = ()) -> InFlight:
    """The runs in flight now, and the sweeps an instance with `instance_tags` may claim
    from, read afresh (after the caller's instance lock, so it includes the runs the
    claimer that held it just started)."""
    teams: Counter[UUID] = Counter()
    prompts: Counter[str] = Counter()
    waiting: list[Sequence[Any]] = []
    for row in session.execute(IN_FLIGHT_AND_WAITING, fits_params(instance_tags)):
        if row.sweep_id is not None:
            waiting.append(row)
            continue
        teams[row.team_id] += 1
        if row.instance is not None:
            prompts[row.instance] += 1
    return InFlight(prompts, _standing_of(waiting, teams))


@dataclass(frozen=True, slots=True)
class _LockedTeam:
    max_running: int | None


def _team_lock(wait: bool) -> sa.Select[UUID, int | None]:
    """Lock the team's row and read its cap under the lock. FOR NO KEY UPDATE: it excludes
    other claimers but not the key-share locks that inserting a sweep or an active_sweeps
    row takes on its team."""
    return (
        sa.select(_teams.c.id, _teams.c.max_running)
        .where(_teams.c.id == sa.bindparam("team_id"))
        .with_for_update(key_share=True, skip_locked=not wait)
    )


_TEAM_LOCKS = {wait: _team_lock(wait) for wait in (True, False)}


def _lock_team(session: Session, team_id: UUID, wait: bool) -> _LockedTeam | None:
    """None when skipped: another claimer holds it."""
    row = session.execute(_TEAM_LOCKS[wait], {"team_id": team_id}).first()
    return None if row is None else _LockedTeam(row.max_running)


def _running_of(session: Session, team_id: UUID) -> int:
    """The team's running runs, counted afresh: the shares may predate its last claim."""
    return sum(1 for team in session.scalars(RUNNING_TEAMS) if team == team_id)


def models_elsewhere(session: Session, sweep_id: UUID, instance: str) -> Counter[str]:
    """How many other healthy instances serve each model for the sweep: hold it (or were
    just routed to it) and run one of the sweep's runs now, or run nothing at all (between
    two runs, they will claim again in a moment). Read under the team's lock, so it includes
    what the team's previous claim planned. An instance busy with other sweeps does not
    count, so its model's last runs here are not left waiting for it."""
    params = {"sweep_id": sweep_id, "instance": instance}
    return Counter(session.scalars(SERVING_MODELS, params))


def _serving_models() -> sa.Select[str | None]:
    """The models of the other instances serving the sweep. The runs read are running ones:
    the sweep's off the dispatch-order index's (sweep_id, status), all of them off their
    partial index, as many as there are runs in flight."""
    instance = sa.bindparam("instance", type_=sa.String())
    on_sweep = sa.select(_runs.c.instance).where(
        _runs.c.sweep_id == sa.bindparam("sweep_id"),
        _runs.c.status == RunStatus.RUNNING,
        _runs.c.instance != instance,
    )
    busy = sa.select(_runs.c.instance).where(
        _runs.c.status == RunStatus.RUNNING, _runs.c.instance.is_not(None)
    )
    return sa.select(_instances.c.model_key).where(
        _instances.c.url != instance,
        _instances.c.healthy.is_(True),
        _instances.c.model_key.is_not(None),
        _instances.c.model_key != "",
        sa.or_(_instances.c.url.in_(on_sweep), _instances.c.url.not_in(busy)),
    )


SERVING_MODELS = _serving_models()


def run_for(
    session: Session, sweep_id: UUID, instance: str, model_key: str, avoid: str | None
) -> QueuedRun | None:
    """The sweep's run for an instance holding `model_key`: its next run of that model while
    there is one; else the next in dispatch order unless another instance serves that model;
    else the first run, by dispatch order, of a model nobody serves; else a model another
    instance serves, if this one has none loaded or that model's backlog is worth a load."""
    if model_key:
        same = next_of_model(session, sweep_id, model_key, avoid)
        if same is not None:
            return same
    head = next_queued(session, sweep_id, avoid)
    if head is None:
        return None
    held = models_elsewhere(session, sweep_id, instance)
    if head.model_key not in held:
        return head
    firsts: dict[str, int] = {}
    for key in session.scalars(MODELS, {"sweep_id": sweep_id}):
        if key not in held and key != model_key:
            order = session.scalar(
                ORDER_PROBES[avoid is not None], probe_params(sweep_id, key, avoid)
            )
            if order is not None:
                firsts[key] = order
    if not firsts:
        # A retry avoids the instance it failed on, which may be the one serving its model:
        # then no other instance would ever load it, and the sweep would never end. Retries
        # are rare enough that loading for one is cheaper than working out who serves it.
        helps = not model_key or bool(head.failed_on) or _worth_a_load(session, head, held, avoid)
        return head if helps else None
    free = min(firsts, key=lambda key: (firsts[key], key))
    return next_of_model(session, sweep_id, free, avoid) or head


def next_of_model(
    session: Session, sweep_id: UUID, model_key: str, avoid: str | None
) -> QueuedRun | None:
    """The sweep's next queued run of one model, locked."""
    params = probe_params(sweep_id, model_key, avoid)
    row = session.execute(MODEL_PROBES[avoid is not None], params).first()
    return None if row is None else QueuedRun(row.id, row.sweep_id, row.model_key, row.failed_on)


def next_queued(session: Session, sweep_id: UUID, avoid: str | None) -> QueuedRun | None:
    """The sweep's next queued run in dispatch order, locked."""
    row = session.execute(HEAD_PROBES[avoid is not None], probe_params(sweep_id, "", avoid)).first()
    return None if row is None else QueuedRun(row.id, row.sweep_id, row.model_key, row.failed_on)


def _worth_a_load(
    session: Session, head: QueuedRun, held: Mapping[str, int], avoid: str | None
) -> bool:
    """Whether an instance should load a model others already serve, to help with its
    backlog. Near a sweep's end it waits instead: finishing the last few runs costs less
    than loading a checkpoint again, and the instances serving it are about to finish."""
    enough = HELP_BACKLOG * held[head.model_key]
    params = {**probe_params(head.sweep_id, head.model_key, avoid), "upto": enough}
    backlog = session.scalar(BACKLOGS[avoid is not None], params)
    return (backlog or 0) >= enough


def probe_params(sweep_id: UUID, model_key: str, avoid: str | None) -> dict[str, Any]:
    """The parameters of the probes below: with `avoid`, the *_PROBES[True] variants."""
    return {"sweep_id": sweep_id, "model_key": model_key, "avoid": avoid or ""}


_last_failure_instance = sa.func.coalesce(_runs.c.error[FAILED_ON].as_string(), "")


def _queued(model: bool, avoid: bool) -> tuple[sa.ColumnElement[bool], ...]:
    """The sweep's queued runs (of one model), not failed on the instance to avoid."""
    match = [_runs.c.sweep_id == sa.bindparam("sweep_id"), _runs.c.status == RunStatus.QUEUED]
    if model:
        match.append(_runs.c.model_key == sa.bindparam("model_key"))
    if avoid:
        match.append(_last_failure_instance != sa.bindparam("avoid", type_=sa.String()))
    return tuple(match)


def _locked(match: tuple[sa.ColumnElement[bool], ...]) -> sa.Select[UUID, UUID, str]:
    """The first matching run in dispatch order, skipping rows another transaction holds."""
    return (
        sa.select(
            _runs.c.id,
            _runs.c.sweep_id,
            _runs.c.model_key,
            _last_failure_instance.label("failed_on"),
        )
        .where(*match)
        .order_by(_runs.c.dispatch_order)
        .limit(1)
        .with_for_update(of=_runs, skip_locked=True)
    )


_BOTH = (False, True)
# The sweep's next queued run of one model, locked, straight off ix_runs_queued_model.
MODEL_PROBES = {avoid: _locked(_queued(model=True, avoid=avoid)) for avoid in _BOTH}
# The sweep's next queued run in dispatch order, locked, off
# ix_runs_sweep_id_status_dispatch_order.
HEAD_PROBES = {avoid: _locked(_queued(model=False, avoid=avoid)) for avoid in _BOTH}
# Where the sweep's next queued run of one model stands in dispatch order; nothing locked,
# since the claim may prefer another model.
ORDER_PROBES = {
    avoid: sa.select(_runs.c.dispatch_order)
    .where(*_queued(model=True, avoid=avoid))
    .order_by(_runs.c.dispatch_order)
    .limit(1)
    for avoid in _BOTH
}


def _backlog(avoid: bool) -> sa.Select[int]:
    """How many queued runs of one model the sweep has, counting no further than `upto`."""
    some = (
        sa.select(_runs.c.id).where(*_queued(model=True, avoid=avoid)).limit(sa.bindparam("upto"))
    )
    return sa.select(sa.func.count()).select_from(some.subquery())


BACKLOGS = {avoid: _backlog(avoid) for avoid in _BOTH}


def _models() -> sa.Select[str]:
    """The sweep's distinct models with queued runs, up to MODELS_LOOKED_AT: a loose index
    scan (each step one probe for the next larger key), not a scan of its runs."""
    # min() rather than ORDER BY ... LIMIT 1: SQLite refuses LIMIT inside a compound
    # select, and both databases answer min() over an index's column from its first entry.
    queued = _queued(model=False, avoid=False)
    first = sa.select(sa.func.min(_runs.c.model_key).label("key")).where(*queued)
    keys = first.cte("model_keys", recursive=True)
    following = (
        sa.select(sa.func.min(_runs.c.model_key))
        .where(*queued, _runs.c.model_key > keys.c.key)
        .scalar_subquery()
    )
    keys = keys.union_all(sa.select(following).where(keys.c.key.is_not(None)))
    return sa.select(keys.c.key).where(keys.c.key.is_not(None)).limit(MODELS_LOOKED_AT)


MODELS = _models()
