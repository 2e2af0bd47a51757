"""The serving order of teams and sweeps for a free slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from app.domain.fair_share import Share, Waiting, serving_order

T0 = datetime(2026, 12, 6, tzinfo=UTC)


def waiting(team: UUID, minutes: int, priority: int = 50) -> Waiting:
    return Waiting(uuid4(), team, priority, T0 + timedelta(minutes=minutes))


def test_priority_beats_age_and_share() -> None:
    a, b = uuid4(), uuid4()
    old, urgent = waiting(a, 0), waiting(b, 5, priority=90)
    turns = serving_order([old, urgent], {a: Share(1, None, 0), b: Share(1, None, 7)})
    assert [t.team_id for t in turns] == [b, a]


def test_least_running_per_weight_goes_first() -> None:
    a, b = uuid4(), uuid4()
    turns = serving_order(
        [waiting(a, 0), waiting(b, 1)], {a: Share(1, None, 1), b: Share(3, None, 2)}
    )
    assert [t.team_id for t in turns] == [b, a]  # 2/3 < 1/1


def test_equal_shares_go_to_the_team_waiting_longest() -> None:
    a, b = uuid4(), uuid4()
    turns = serving_order(
        [waiting(b, 0), waiting(a, 1)], {a: Share(1, None, 1), b: Share(3, None, 3)}
    )
    assert [t.team_id for t in turns] == [b, a]  # 1/1 == 3/3: b's sweep is older


def test_a_teams_sweeps_come_in_submission_order_and_capped_teams_not_at_all() -> None:
    a, b = uuid4(), uuid4()
    later, first = waiting(a, 3), waiting(a, 1)
    turns = serving_order([later, first, waiting(b, 0)], {a: Share(1, None, 0), b: Share(1, 2, 2)})
    assert [(t.team_id, t.sweeps) for t in turns] == [(a, (first.sweep_id, later.sweep_id))]


def test_ties_go_by_the_ids_as_strings() -> None:
    teams = [uuid4() for _ in range(20)]
    sweeps = [Waiting(uuid4(), teams[0], 50, T0) for _ in range(20)]
    others = [Waiting(uuid4(), team, 50, T0) for team in teams[1:]]
    shares = {team: Share(1, None, 0) for team in teams}
    turns = serving_order([*sweeps, *others], shares)
    assert [str(t.team_id) for t in turns] == sorted(str(team) for team in teams)
    mine = next(t for t in turns if t.team_id == teams[0])
    assert [str(s) for s in mine.sweeps] == sorted(str(s.sweep_id) for s in sweeps)
