"""The queued cap holds under concurrent submissions of one team: each submission's check
waits for the one before it to commit, then counts the runs it stored."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.api.errors import QueueFull
from app.services.quotas import check_submission
from app.stores import runs, sweeps, teams

CAP, RUNS = 30, 20  # one sweep of 20 fits under the cap, two do not


@pytest.fixture
def capped_team(engine: Engine) -> Iterator[UUID]:
    with Session(engine) as session:
        team = teams.get_or_create_team(session, f"capped-{uuid4().hex[:8]}")
        team.max_queued = CAP
        session.commit()
        yield team.id


def submit(session: Session, team_id: UUID) -> None:
    """What a submission does with its queue: check the cap, then store its queued runs."""
    check_submission(session, team_id, priority=50, runs=RUNS)
    sweep = sweeps.add_sweep(
        session,
        sweep_id=uuid4(),
        team_id=team_id,
        workflow="demo-noise",
        request={},
        plan={"axes": [], "mode": "product"},
        total=RUNS,
    )
    runs.add_runs(session, sweep.id, (runs.NewRun(i, {"seed": i}) for i in range(RUNS)))


def test_a_second_submission_waits_for_the_first_and_then_sees_its_runs(
    engine: Engine, capped_team: UUID
) -> None:
    outcome: list[BaseException | None] = []
    first = Session(engine)
    try:
        submit(first, capped_team)  # checked and stored, not yet committed

        def second() -> None:
            with Session(engine) as session:
                try:
                    submit(session, capped_team)
                    session.commit()
                    outcome.append(None)
                except QueueFull as full:
                    outcome.append(full)

        waiting = threading.Thread(target=second)
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive(), "the second check did not wait for the first submission"
        first.commit()
        waiting.join(timeout=10.0)
        assert not waiting.is_alive()
    finally:
        first.close()
    assert len(outcome) == 1
    assert isinstance(outcome[0], QueueFull)
    with Session(engine) as session:
        assert teams.queued_runs(session, capped_team) == RUNS


def test_other_teams_submissions_do_not_wait(engine: Engine, capped_team: UUID) -> None:
    with Session(engine) as other_team_session:
        other = teams.get_or_create_team(other_team_session, f"other-{uuid4().hex[:8]}")
        other.max_queued = CAP
        other_team_session.commit()
        other_id = other.id
    first = Session(engine)
    try:
        submit(first, capped_team)
        done = threading.Event()

        def other_submission() -> None:
            with Session(engine) as session:
                submit(session, other_id)
                session.commit()
            done.set()

        thread = threading.Thread(target=other_submission)
        thread.start()
        assert done.wait(timeout=5.0), "another team's submission waited on this team's"
        thread.join()
        first.rollback()
    finally:
        first.close()
