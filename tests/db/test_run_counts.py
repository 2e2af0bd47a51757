"""A sweep's per-status run counters move with every run transition, in its transaction,
and always equal a recount of the runs; stale reports and rollbacks move nothing."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
import sqlalchemy as sa
from celery import Celery
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import Sweep
from app.domain.fair_share import MAX_PRIORITY
from app.domain.states import RunStatus, SweepStatus
from app.services.cancelling import cancel_sweep
from app.stores import claims, runs, sweeps, teams
from app.stores.runs import Claim
from tests.support.run_counts import assert_counts_match_recount

INSTANCE = "http://gpu0:8188"


@pytest.fixture
def celery() -> Celery:
    return Celery("counts", broker="memory://")  # cancellation's message goes nowhere


def counts(
    queued: int = 0, running: int = 0, succeeded: int = 0, failed: int = 0, cancelled: int = 0
) -> dict[RunStatus, int]:
    return {
        RunStatus.QUEUED: queued,
        RunStatus.RUNNING: running,
        RunStatus.SUCCEEDED: succeeded,
        RunStatus.FAILED: failed,
        RunStatus.CANCELLED: cancelled,
    }


def running_sweep(session: Session, total: int) -> Sweep:
    team = teams.get_or_create_team(session, f"team-{uuid4().hex[:8]}")
    sweep = sweeps.add_sweep(
        session,
        sweep_id=uuid4(),
        team_id=team.id,
        workflow="txt2img",
        request={},
        plan={"axes": [], "mode": "product"},
        total=total,
        # Above anything other tests leave queued in the shared database, so claims take
        # this sweep's runs.
        priority=MAX_PRIORITY,
    )
    runs.add_runs(session, sweep.id, (runs.NewRun(i, {"seed": i}) for i in range(total)))
    sweeps.move_sweep(session, sweep.id, [SweepStatus.PENDING], SweepStatus.RUNNING)
    return sweep


def claim(session: Session, task: str = "task", lease_s: float = 60) -> Claim:
    starting = claims.Starting(f"{task}-{uuid4()}", _later(lease_s))
    held = claims.next_run(session, INSTANCE, None, None, starting)
    assert held is not None
    return held


def _later(seconds: float) -> Any:
    return utc_now() + timedelta(seconds=seconds)


def test_submission_counts_every_run_queued(db_session: Session) -> None:
    sweep = running_sweep(db_session, 25)
    assert assert_counts_match_recount(db_session, sweep.id) == counts(queued=25)


def test_claim_succeed_fail_and_requeue_each_move_one_run(db_session: Session) -> None:
    sweep = running_sweep(db_session, 4)
    first, second, third = claim(db_session), claim(db_session), claim(db_session)
    assert assert_counts_match_recount(db_session, sweep.id) == counts(queued=1, running=3)

    assert runs.finish_run(db_session, first, RunStatus.SUCCEEDED)
    assert runs.finish_run(db_session, second, RunStatus.FAILED, {"kind": "execution"})
    assert runs.requeue_run(db_session, third, {"kind": "transport"})

    assert assert_counts_match_recount(db_session, sweep.id) == counts(
        queued=2, succeeded=1, failed=1
    )


def test_a_stale_or_duplicate_report_moves_no_counter(db_session: Session) -> None:
    sweep = running_sweep(db_session, 2)
    held = claim(db_session)
    assert runs.finish_run(db_session, held, RunStatus.SUCCEEDED)

    assert not runs.finish_run(db_session, held, RunStatus.SUCCEEDED)
    assert not runs.finish_run(db_session, held, RunStatus.FAILED)
    assert not runs.requeue_run(db_session, held, {"kind": "transport"})
    assert runs.start_run(db_session, held.run_id, INSTANCE, "again", _later(60)) is None

    assert assert_counts_match_recount(db_session, sweep.id) == counts(queued=1, succeeded=1)


def test_a_retried_run_counts_once_through_its_second_attempt(db_session: Session) -> None:
    sweep = running_sweep(db_session, 1)
    assert runs.requeue_run(db_session, claim(db_session), {"kind": "transport"})
    again = claim(db_session)
    assert again.attempt == 2
    assert runs.finish_run(db_session, again, RunStatus.SUCCEEDED)
    assert assert_counts_match_recount(db_session, sweep.id) == counts(succeeded=1)


def test_taking_over_a_lapsed_lease_keeps_the_run_counted_running(db_session: Session) -> None:
    sweep = running_sweep(db_session, 1)
    held = claim(db_session, "dead-worker", lease_s=-86400)
    taken = runs.take_over(db_session, held.run_id, "heir", utc_now(), _later(60))
    assert taken is not None
    assert assert_counts_match_recount(db_session, sweep.id) == counts(running=1)

    assert runs.finish_run(db_session, taken, RunStatus.SUCCEEDED)
    assert assert_counts_match_recount(db_session, sweep.id) == counts(succeeded=1)


def test_cancelling_moves_queued_and_running_runs_by_what_each_was(
    db_session: Session, celery: Celery
) -> None:
    sweep = running_sweep(db_session, 6)
    done, held = claim(db_session), claim(db_session)
    claim(db_session)
    assert runs.finish_run(db_session, done, RunStatus.SUCCEEDED)
    assert runs.requeue_run(db_session, held, {"kind": "transport"})  # queued again

    assert cancel_sweep(db_session, celery, sweep)

    assert assert_counts_match_recount(db_session, sweep.id) == counts(succeeded=1, cancelled=5)


def test_cancelling_an_ended_sweep_changes_no_run_and_no_counter(
    db_session: Session, celery: Celery
) -> None:
    sweep = running_sweep(db_session, 3)
    for _ in range(3):
        assert runs.finish_run(db_session, claim(db_session), RunStatus.SUCCEEDED)
    sweeps.move_sweep(db_session, sweep.id, [SweepStatus.RUNNING], SweepStatus.SUCCEEDED)
    db_session.commit()

    assert not cancel_sweep(db_session, celery, sweep)

    assert assert_counts_match_recount(db_session, sweep.id) == counts(succeeded=3)


def test_a_rolled_back_transition_leaves_the_counters_as_they_were(db_session: Session) -> None:
    sweep = running_sweep(db_session, 2)
    db_session.commit()
    claim(db_session)
    db_session.rollback()
    assert assert_counts_match_recount(db_session, sweep.id) == counts(queued=2)


_UPDATES_SWEEPS = re.compile(r"\s*(WITH\b.*\)\s*)?UPDATE sweeps\b", re.IGNORECASE | re.DOTALL)


def sweep_updates(session: Session) -> list[str]:
    """The UPDATEs of sweeps the session sends from now on, a run's transition that moves
    the counters in the same statement (`sweeps.counting`: WITH ... UPDATE sweeps) included."""
    sent: list[str] = []

    def note(*args: Any) -> None:
        statement = str(args[2])
        if _UPDATES_SWEEPS.match(statement):
            sent.append(statement)

    sa.event.listen(session.connection().engine, "before_cursor_execute", note)
    return sent


def test_only_the_record_that_ends_the_last_run_asks_to_finalize(db_session: Session) -> None:
    sweep = running_sweep(db_session, 2)
    first, second = claim(db_session), claim(db_session)
    db_session.commit()
    updates = sweep_updates(db_session)

    assert runs.finish_run(db_session, first, RunStatus.SUCCEEDED)
    # The counters' UPDATE said a run is still running: no second statement is sent.
    assert not sweeps.start_finalizing_if_drained(db_session, sweep.id)
    assert len(updates) == 1
    db_session.commit()

    assert runs.finish_run(db_session, second, RunStatus.SUCCEEDED)
    assert sweeps.start_finalizing_if_drained(db_session, sweep.id)
    status = db_session.scalar(sa.select(Sweep.status).where(Sweep.id == sweep.id))
    assert status is SweepStatus.FINALIZING


def test_a_transaction_that_moved_no_counters_asks_the_database(db_session: Session) -> None:
    """The reconciler's check of a drained sweep: no `move_counts` of its own to go by."""
    sweep = running_sweep(db_session, 1)
    only = claim(db_session)
    db_session.commit()
    assert runs.finish_run(db_session, only, RunStatus.SUCCEEDED)
    db_session.commit()  # the record's own check was lost, say, with its worker

    assert sweeps.start_finalizing_if_drained(db_session, sweep.id)
