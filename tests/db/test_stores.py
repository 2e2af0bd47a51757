"""The stores against the migrated Postgres: bulk runs, paging, counts, team scoping, keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.engine import make_engine, make_session_factory
from app.db.migrate import alembic_config
from app.db.models import ActiveSweep, Run, Sweep, Team
from app.domain.states import RunStatus, SweepStatus
from app.stores import attempts, runs, sweeps, teams


def make_team(session: Session) -> Team:
    return teams.get_or_create_team(session, f"team-{uuid4().hex[:8]}")


def make_sweep(session: Session, team: Team, total: int = 0) -> Sweep:
    return sweeps.add_sweep(
        session,
        sweep_id=uuid4(),
        team_id=team.id,
        workflow="txt2img",
        request={"workflow": "txt2img", "axes": [{"param": "cfg", "values": "4-8 (+2)"}]},
        plan={"axes": [{"param": "cfg", "values": [4, 6, 8]}], "mode": "product"},
        total=total,
    )


def assignments(count: int) -> list[runs.NewRun]:
    return [
        runs.NewRun(
            i,
            {"cfg": 4 + i % 5 / 2, "sampler": "euler", "seed": 2**40 + i},
            dispatch_order=count - i,
            model_key=f"m{i % 2}",
        )
        for i in range(count)
    ]


def set_status(session: Session, sweep: Sweep, indexes: range, status: RunStatus) -> None:
    where = (Run.sweep_id == sweep.id, Run.index.in_(indexes))
    session.execute(sa.update(Run).where(*where).values(status=status))


def test_ten_thousand_runs_round_trip_in_index_order(db_session: Session) -> None:
    sweep = make_sweep(db_session, make_team(db_session), total=10_000)
    expected = assignments(10_000)

    assert runs.add_runs(db_session, sweep.id, iter(expected)) == 10_000

    stored, total = runs.page_runs(db_session, sweep.id, 0, 10_000, None)
    assert total == 10_000
    assert [(r.index, r.own_values) for r in stored] == [(e.index, e.own_values) for e in expected]
    assert [(r.dispatch_order, r.model_key) for r in stored[:2]] == [(10_000, "m0"), (9_999, "m1")]
    assert {r.status for r in stored} == {RunStatus.QUEUED}
    assert all(r.attempts == 0 and r.queued_at.tzinfo is UTC for r in stored)
    assert len({r.id for r in stored}) == 10_000


def test_run_index_is_unique_within_a_sweep(db_session: Session) -> None:
    sweep = make_sweep(db_session, make_team(db_session))
    runs.add_runs(db_session, sweep.id, [runs.NewRun(0, {"cfg": 4})])

    with pytest.raises(IntegrityError):
        runs.add_runs(db_session, sweep.id, [runs.NewRun(0, {"cfg": 6})])


def test_runs_page_in_index_order_filtered_by_status(db_session: Session) -> None:
    sweep = make_sweep(db_session, make_team(db_session), total=10)
    runs.add_runs(db_session, sweep.id, assignments(10))
    set_status(db_session, sweep, range(2, 7), RunStatus.SUCCEEDED)

    page, total = runs.page_runs(db_session, sweep.id, 1, 2, RunStatus.SUCCEEDED)

    assert total == 5
    assert [r.index for r in page] == [3, 4]


def test_counts_by_status_cover_every_status(db_session: Session) -> None:
    sweep = make_sweep(db_session, make_team(db_session), total=10)
    runs.add_runs(db_session, sweep.id, assignments(10))
    set_status(db_session, sweep, range(3), RunStatus.RUNNING)
    set_status(db_session, sweep, range(3, 4), RunStatus.FAILED)

    counts = runs.count_runs_by_status(db_session, sweep.id)

    assert counts == {
        RunStatus.QUEUED: 6,
        RunStatus.RUNNING: 3,
        RunStatus.SUCCEEDED: 0,
        RunStatus.FAILED: 1,
        RunStatus.CANCELLED: 0,
    }


def test_every_state_can_be_stored(db_session: Session) -> None:
    # The status CHECK constraints must follow the enums; a new state needs a migration.
    sweep = make_sweep(db_session, make_team(db_session), total=len(RunStatus))
    runs.add_runs(db_session, sweep.id, assignments(len(RunStatus)))
    for index, status in enumerate(RunStatus):
        set_status(db_session, sweep, range(index, index + 1), status)
    for sweep_status in SweepStatus:
        sweep.status = sweep_status
        db_session.flush()


def test_sweeps_page_newest_first_with_ties_broken_by_id(db_session: Session) -> None:
    team = make_team(db_session)
    created = [make_sweep(db_session, team) for _ in range(4)]
    noon = datetime(2030, 1, 1, 12, tzinfo=UTC)
    for sweep, minutes in zip(created, [0, 5, 5, 9], strict=True):
        sweep.created_at = noon + timedelta(minutes=minutes)
    db_session.flush()
    tied = sorted(created[1:3], key=lambda s: s.id, reverse=True)

    first, total = sweeps.page_sweeps(db_session, team.id, 0, 3)
    rest, _ = sweeps.page_sweeps(db_session, team.id, 3, 3)

    assert total == 4
    assert first == [created[3], *tied]
    assert rest == [created[0]]


def test_another_teams_sweep_is_not_found(db_session: Session) -> None:
    owner, other = make_team(db_session), make_team(db_session)
    sweep = make_sweep(db_session, owner)

    assert sweeps.get_sweep(db_session, sweep.id, owner.id) is sweep
    assert sweeps.get_sweep(db_session, sweep.id, other.id) is None
    assert sweeps.page_sweeps(db_session, other.id, 0, 10) == ([], 0)


def test_get_or_create_team_returns_the_existing_team(db_session: Session) -> None:
    team = make_team(db_session)

    assert teams.get_or_create_team(db_session, team.name).id == team.id


def test_a_key_is_found_by_hash_with_its_team_id_until_revoked(db_session: Session) -> None:
    team = make_team(db_session)
    key = teams.add_key(db_session, team.id, "a" * 64, "csk_abcdefgh", "laptop")
    db_session.expunge_all()  # the key must come from the query, not the identity map

    found = teams.find_active_key(db_session, "a" * 64)
    assert found is not None
    assert (found.id, found.team_id) == (key.id, team.id)
    with pytest.raises(sa.exc.InvalidRequestError):  # every request runs this: no team load
        _ = found.team

    assert teams.revoke_key(db_session, "csk_abcdefgh") == 1
    assert teams.find_active_key(db_session, "a" * 64) is None
    assert teams.revoke_key(db_session, "csk_abcdefgh") == 0


def test_a_key_can_be_revoked_by_id(db_session: Session) -> None:
    key = teams.add_key(db_session, make_team(db_session).id, "b" * 64, "csk_bbbbbbbb", "")

    assert teams.revoke_key(db_session, str(key.id)) == 1
    assert teams.find_active_key(db_session, "b" * 64) is None


def test_listing_keeps_revoked_keys_and_filters_by_team(db_session: Session) -> None:
    mine, theirs = make_team(db_session), make_team(db_session)
    teams.add_key(db_session, mine.id, "c" * 64, "csk_cccccccc", "old")
    teams.add_key(db_session, mine.id, "d" * 64, "csk_dddddddd", "new")
    teams.add_key(db_session, theirs.id, "e" * 64, "csk_eeeeeeee", "")
    teams.revoke_key(db_session, "csk_cccccccc")
    db_session.expire_all()

    listed = teams.list_keys(db_session, mine.name)

    assert [(k.label, k.team.name, k.revoked_at is None) for k in listed] == [
        ("old", mine.name, False),
        ("new", mine.name, True),
    ]


def test_touching_a_key_records_when_it_was_used(db_session: Session) -> None:
    key = teams.add_key(db_session, make_team(db_session).id, "f" * 64, "csk_ffffffff", "")
    now = datetime.now(UTC)

    assert teams.touch_key(db_session, key.id, now, stale_before=now - timedelta(minutes=1))
    db_session.refresh(key)

    assert key.last_used_at == now


def test_a_key_touched_recently_is_not_written_again(db_session: Session) -> None:
    key = teams.add_key(db_session, make_team(db_session).id, "e" * 64, "csk_eeeeeeee", "")
    first = datetime.now(UTC)
    assert teams.touch_key(db_session, key.id, first, stale_before=first - timedelta(minutes=1))

    later = first + timedelta(seconds=30)
    assert not teams.touch_key(db_session, key.id, later, stale_before=later - timedelta(minutes=1))
    db_session.refresh(key)

    assert key.last_used_at == first


@pytest.fixture
def sqlite_session(tmp_path: Path) -> Iterator[Session]:
    """A migrated SQLite file, for the stores' non-Postgres paths."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    config = alembic_config(url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


def test_sqlite_bulk_insert_round_trips_and_cascades(sqlite_session: Session) -> None:
    sweep = make_sweep(sqlite_session, make_team(sqlite_session), total=100)
    assert runs.add_runs(sqlite_session, sweep.id, assignments(100)) == 100
    sqlite_session.commit()

    stored, total = runs.page_runs(sqlite_session, sweep.id, 0, 100, None)
    assert total == 100
    expected = [(r.index, r.own_values, r.dispatch_order, r.model_key) for r in assignments(100)]
    assert [(r.index, r.own_values, r.dispatch_order, r.model_key) for r in stored] == expected
    assert stored[0].queued_at.tzinfo is UTC
    assert runs.count_runs_by_status(sqlite_session, sweep.id)[RunStatus.QUEUED] == 100

    # Foreign keys are enforced (the engine turns them on): deleting the sweep takes its runs.
    sqlite_session.execute(sa.delete(Sweep).where(Sweep.id == sweep.id))
    assert sqlite_session.scalar(sa.select(sa.func.count()).select_from(Run)) == 0


@pytest.mark.parametrize("session_fixture", ["db_session", "sqlite_session"])
def test_a_team_created_concurrently_is_read_back_after_the_conflict(
    session_fixture: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    session: Session = request.getfixturevalue(session_fixture)
    winner = make_team(session)
    # The first look misses, as if another process inserted the team just after it.
    lookups = iter([None])
    real_find = teams._find_team
    monkeypatch.setattr(teams, "_find_team", lambda s, n: next(lookups, None) or real_find(s, n))

    assert teams.get_or_create_team(session, winner.name).id == winner.id
    # Only the savepoint was rolled back: the caller's transaction, with the winner, lives on.
    same_name = sa.select(sa.func.count()).select_from(Team).where(Team.name == winner.name)
    assert session.scalar(same_name) == 1


def test_assignments_with_escapes_and_unicode_round_trip_through_the_copy(
    db_session: Session,
) -> None:
    tricky = {
        "prompt": 'a "quoted"\tprompt\nwith\\backslashes\\n, \r and 🦊 ünïcode',
        "negative": "\\.",  # COPY's end-of-data marker, were it not escaped
        "nested": {"list": [1, 2.5, None, True], "empty": ""},
    }
    sweep = make_sweep(db_session, make_team(db_session), total=2)
    runs.add_runs(db_session, sweep.id, [runs.NewRun(0, tricky, 1, "k\\ey\t")])
    runs.add_runs(db_session, sweep.id, [runs.NewRun(1, {}, 0, "")])

    stored, _ = runs.page_runs(db_session, sweep.id, 0, 10, None)

    assert [(r.own_values, r.model_key) for r in stored] == [(tricky, "k\\ey\t"), ({}, "")]
    assert all(r.id.version == 7 for r in stored)


def test_a_claim_holds_the_full_assignment_of_a_lean_run_or_one_stored_whole(
    db_session: Session,
) -> None:
    team = make_team(db_session)
    fixed = {"steps": 20, "prompt": "a lighthouse", "cfg": 7.0}
    sweep = sweeps.add_sweep(
        db_session,
        sweep_id=uuid4(),
        team_id=team.id,
        workflow="txt2img",
        request={},
        plan={"fixed": fixed, "axes": [{"param": "cfg", "values": [4, 6]}]},
        total=2,
    )
    whole = {**fixed, "cfg": 4, "seed": 1}
    runs.add_runs(db_session, sweep.id, [runs.NewRun(0, whole), runs.NewRun(1, {"cfg": 6})])
    lease = datetime.now(UTC) + timedelta(minutes=5)
    claims = []
    for index in (0, 1):
        run = runs.get_run(db_session, sweep.id, index)
        assert run is not None
        claim = runs.start_run(db_session, run.id, "http://gpu1:8188", f"t{index}", lease)
        resumed = runs.claimed_by(db_session, f"t{index}")  # a redelivered message
        assert claim is not None
        assert resumed is not None
        claims += [claim.assignment, resumed.assignment]
    assert claims == [whole, whole, {**fixed, "cfg": 6}, {**fixed, "cfg": 6}]


@pytest.mark.parametrize("session_fixture", ["db_session", "sqlite_session"])
def test_a_runs_transitions_move_its_counters_once_on_either_backend(
    session_fixture: str, request: pytest.FixtureRequest
) -> None:
    """Postgres moves the counters in the transition's own statement, SQLite in a second
    one: both apply each compare-and-set once and keep the counters equal to a recount."""
    session: Session = request.getfixturevalue(session_fixture)
    sweep = make_sweep(session, make_team(session), total=3)
    runs.add_runs(session, sweep.id, assignments(3))
    sweeps.move_sweep(session, sweep.id, [SweepStatus.PENDING], SweepStatus.RUNNING)
    stored, _ = runs.page_runs(session, sweep.id, 0, 3, None)
    lease = datetime.now(UTC) + timedelta(minutes=1)
    held = [runs.start_run(session, run.id, "http://gpu0:8188", "task", lease) for run in stored]
    assert runs.start_run(session, stored[0].id, "http://gpu1:8188", "other", lease) is None
    succeeded, failed, retried = (claim for claim in held if claim is not None)
    assert (succeeded.index, succeeded.attempt, succeeded.instance) == (0, 1, "http://gpu0:8188")

    assert runs.finish_run(session, succeeded, RunStatus.SUCCEEDED)
    assert runs.finish_run(session, failed, RunStatus.FAILED, {"kind": "execution"})
    assert runs.requeue_run(session, retried, {"kind": "transport"})
    assert not runs.finish_run(session, succeeded, RunStatus.FAILED)  # a duplicate report
    assert not runs.requeue_run(session, retried, {"kind": "transport"})

    counted = sweeps.run_counts(sweep)  # the loaded sweep, kept in step with its row
    assert counted == runs.count_runs_by_status(session, sweep.id)
    assert counted[RunStatus.QUEUED] == counted[RunStatus.SUCCEEDED] == 1
    (past,) = attempts.attempts_of(session, retried.run_id)
    assert (past.attempt, past.instance, past.started_at) == (
        1,
        retried.instance,
        retried.started_at,
    )
    assert session.get(ActiveSweep, sweep.id) is not None  # its requeued run is claimable
