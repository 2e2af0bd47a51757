"""Starting sweeps and handing runs to instances: which instance has a free slot, and which
queued run it should take so consecutive prompts share models and cached upstream work.

Messages are hints, not records: a `work` message asks "fill a free slot with the best
queued run, and keep it filled" (`workers.slot_keeping`), so a duplicate finds nothing to do
and a lost one is re-sent by the reconciler.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.domain.states import STARTABLE, SweepStatus
from app.metrics import observed
from app.queue import WORK
from app.stores import claims, instances, runs, sweeps
from app.stores.instances import Chosen, LockedInstance, PoolEntry
from app.stores.runs import Claim
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def start_sweep(rt: Runtime, sweep_id: UUID) -> None:
    """pending → running, then one work message per slot of the pool. A claim may have
    started it already (`claims.start_pending`): then the messages are still sent, as the
    free slots beyond the one that claim filled need them."""
    with rt.sessions() as session:
        now = utc_now()
        if sweeps.move_sweep(session, sweep_id, STARTABLE, SweepStatus.RUNNING, started_at=now):
            sweeps.mark_hinted(session, sweep_id, now)
            session.commit()
            log.info("sweep_started sweep=%s", sweep_id)
        else:
            found = sweeps.find_sweep(session, sweep_id)
            if found is None or found.status is not SweepStatus.RUNNING:
                return  # cancelled meanwhile
    send_work(rt, pool_slots(rt))


def pool_slots(rt: Runtime) -> int:
    return max(1, len(rt.settings.instances)) * rt.settings.instance_slots


def send_work(rt: Runtime, count: int, countdown: float = 0) -> None:
    for _ in range(count):
        rt.send(WORK, countdown=countdown)


def lease_until(rt: Runtime, now: datetime | None = None) -> datetime:
    return (now or utc_now()) + timedelta(seconds=rt.settings.lease_s)


@dataclass(frozen=True)
class Work:
    claim: Claim
    resumed: bool  # the run was already this message's: it came back after its worker died


def take_work(
    rt: Runtime, task_id: str, maybe_held: bool = True, freed: str | None = None
) -> Work | None:
    """The run this task's message already holds, else the best queued run for the emptiest
    healthy instance's free slot; None when there is nothing to do. Without `maybe_held` (the
    broker says the message is a first delivery, or the task has just recorded the run it
    held), no held run is looked for. `freed`: the instance whose slot the task's last run
    just freed, whose run it claims first (`_claim_in`)."""
    with rt.sessions() as session:
        held = runs.claimed_by(session, task_id) if maybe_held else None
        if held is not None:
            work: Work | None = Work(held, resumed=True)
        else:
            claim = _claim_in(session, rt, task_id, freed)
            work = None if claim is None else Work(claim, resumed=False)
        session.commit()
    if work is not None:
        log_taken(work)
    return work


def log_taken(work: Work) -> None:
    claim = work.claim
    log.info(
        "%s run=%s sweep=%s index=%d instance=%s attempt=%d",
        "run_redelivered" if work.resumed else "run_claimed",
        claim.run_id,
        claim.sweep_id,
        claim.index,
        claim.instance,
        claim.attempt,
    )


def hand_over(
    session: Session, rt: Runtime, task_id: str, freed: Claim, instance: Chosen
) -> Claim | None:
    """The run that takes the slot `freed` leaves on its instance, started in the
    transaction that records `freed` (`workers.refilling`), which locked the instance's row
    first, as a claim does; None where a claim might choose otherwise
    (`claims.handover_run`)."""
    flight = claims.in_flight(session, instance.locked.tags)
    avoid = instance.url if instance.serving > 1 else None
    starting = claims.Starting(task_id, lease_until(rt))
    model_key = instance.locked.model_key
    return claims.handover_run(
        session, instance.url, model_key, avoid, starting, freed.sweep_id, flight
    )


def _claim_in(session: Session, rt: Runtime, task_id: str, freed: str | None) -> Claim | None:
    # Tag sets that no sweep waits for (`claims.waiting_sweeps`): an instance with one of
    # them has nothing to take either, so it is not locked to find that out. Once a sweep's
    # last run is claimed, each of its slots' tasks would otherwise lock every instance.
    idle: set[frozenset[str]] = set()
    turns = _locked_in_turn(session, rt.settings.instance_slots, idle, freed)
    for url, locked, serving in turns:
        outcome = _claim_on(session, rt, task_id, url, locked, serving)
        if not isinstance(outcome, _TryAnother):
            return outcome
        session.commit()  # release it before locking another
        if outcome.nothing_waits:
            idle.add(frozenset(locked.tags))
    return None


def _locked_in_turn(
    session: Session, slots: int, idle: set[frozenset[str]], freed: str | None
) -> Iterator[tuple[str, LockedInstance, int]]:
    """The instances a claim tries, each locked when its turn comes (the caller commits
    before the next), with how many instances may take runs now. First the instance whose
    slot the task's last run `freed`, if any and it still serves: a task then keeps one
    instance's slot filled, and its prompts keep sharing the one socket it has open there
    (`app.comfy.channel`; ComfyUI broadcasts every queue change to every socket, so a task
    roaming the pool held one to each instance, all hearing them). Else the emptiest,
    chosen and locked in one statement, where most claims end; then, should it be full or
    have nothing to take, the rest of the pool, emptiest first, but for tag sets in `idle`.

    Only one instance's row is locked at a time, so claimers for other instances go on in
    parallel; one that wants the same instance waits a moment rather than give up, because
    a hint dropped here would leave the slot empty until the reconciler. Drained and benched
    instances are not in the pool: they get no new runs."""
    now = utc_now()
    first = None if freed is None else instances.lock_serving(session, freed, now)
    if first is None:
        first = instances.lock_emptiest(session, now, slots)
    if first is not None:
        yield first.url, first.locked, first.serving
    pool = instances.healthy_pool(session, now)
    for entry in _emptiest_first(pool, slots):
        if (first is not None and entry.url == first.url) or frozenset(entry.tags) in idle:
            continue
        locked = instances.lock_healthy(session, entry.url, now)
        if locked is None:
            session.commit()  # no longer serving
            continue
        yield entry.url, locked, len(pool)


@dataclass(frozen=True)
class _TryAnother:
    """The instance locked may not take a run now: full, or nothing it may take waits (if
    `nothing_waits`, for any instance with its tags), or only retries that avoid it."""

    nothing_waits: bool


def _claim_on(
    session: Session,
    rt: Runtime,
    task_id: str,
    url: str,
    instance: LockedInstance,
    serving: int,
) -> Claim | _TryAnother | None:
    """A run started on the instance at `url`, locked by the caller; None when there is
    nothing to claim anywhere. The runs in flight are read after the lock, so they include
    the run the claimer that held it just started. `serving`: how many instances may take
    runs now."""
    flight = claims.in_flight(session, instance.tags)
    if flight.prompts[url] >= rt.settings.instance_slots:
        return _TryAnother(nothing_waits=False)  # filled meanwhile
    # A retry goes to another instance than the one its last attempt failed on (a stalled
    # prompt's instance may stall again), unless this is the only healthy one.
    avoid = url if serving > 1 else None
    starting = claims.Starting(task_id, lease_until(rt))
    claim = claims.next_run(
        session,
        url,
        instance.model_key,
        avoid,
        starting,
        instance_tags=instance.tags,
        flight=flight,
    )
    if claim is None:
        if avoid is None:
            return None
        # Maybe only retries that avoid this instance: another one may take them.
        return _TryAnother(nothing_waits=not flight.standing.waiting)
    # Routed in the transaction that chose the model, while it holds the team's lock:
    # the next claimer for the team reads the route as soon as it gets the lock.
    if claim.model_key != instance.model_key:
        instances.set_model_key(session, url, claim.model_key)
        observed.observe_model_load(url)
    return claim


def _emptiest_first(pool: list[PoolEntry], slots: int) -> list[PoolEntry]:
    """Instances with a free slot, emptiest first; ties in random order so that claimers
    arriving together spread over the pool instead of queueing on one row lock."""
    free = [entry for entry in pool if entry.prompts < slots]
    random.shuffle(free)
    return sorted(free, key=lambda entry: entry.prompts)
