"""A team's caps applied at submission, and its standing (weight, caps, usage) as shown to it.

The running cap is enforced by the claim (`app.stores.claims`), not here. The queued cap is
checked with the team's submissions taking turns (`teams.serialize_submissions`), so
concurrent submissions cannot pass it together.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.orm import Session

from app.api.errors import QueueFull
from app.domain.fair_share import MAX_PRIORITY
from app.domain.problems import reject
from app.stores import teams

# When a team's queue is full: long enough for a few runs to finish, short enough that a
# client retrying in a loop is not idle for long once there is room.
QUEUE_FULL_RETRY_AFTER_S = 30


@dataclass(frozen=True, slots=True)
class Standing:
    name: str
    weight: int
    max_running: int | None
    max_queued: int | None
    max_runs_per_sweep: int | None
    max_priority: int
    running: int
    queued: int


def check_submission(session: Session, team_id: UUID, priority: int, runs: int) -> None:
    """Raise a 422 naming the broken cap, or QueueFull (429) when the team's queued runs
    would pass `max_queued` now but not once some of them have run."""
    team = teams.get_team(session, team_id)
    if team is None:
        return  # unreachable behind auth: the key's team exists
    top = MAX_PRIORITY if team.max_priority is None else team.max_priority
    if priority > top:
        msg = f"priority {priority} is above your team's max_priority of {top}"
        raise reject(("priority",), "priority_above_max", msg, priority)
    if team.max_runs_per_sweep is not None and runs > team.max_runs_per_sweep:
        msg = f"{runs} runs is above your team's max_runs_per_sweep of {team.max_runs_per_sweep}"
        raise reject((), "above_max_runs_per_sweep", msg, runs)
    _check_queued(session, team_id, team.max_queued, runs)


@dataclass(frozen=True, slots=True)
class Exceeded:
    """A cap a submission would break: its name, the team's limit and what it would reach."""

    quota: str
    limit: int
    value: int


def exceeded_quotas(session: Session, team_id: UUID, priority: int, runs: int) -> list[Exceeded]:
    """The caps `check_submission` would refuse this submission for, all of them and without
    raising or waiting for the team's other submissions: a dry run reports them."""
    team = teams.get_team(session, team_id)
    if team is None:
        return []
    queued = 0 if team.max_queued is None else teams.queued_runs(session, team_id)
    top = MAX_PRIORITY if team.max_priority is None else team.max_priority
    checks = (
        ("max_priority", top, priority),
        ("max_runs_per_sweep", team.max_runs_per_sweep, runs),
        ("max_queued", team.max_queued, queued + runs),
    )
    return [
        Exceeded(quota, limit, value)
        for quota, limit, value in checks
        if limit is not None and value > limit
    ]


def check_extension(session: Session, team_id: UUID, total: int, added: int) -> None:
    """A sweep extended to `total` runs by `added` new ones: the per-sweep cap counts the
    whole sweep, the queued cap the runs that join the queue."""
    team = teams.get_team(session, team_id)
    if team is not None and team.max_runs_per_sweep is not None and total > team.max_runs_per_sweep:
        msg = (
            f"the extended sweep has {total} runs, above your team's max_runs_per_sweep of "
            f"{team.max_runs_per_sweep}"
        )
        raise reject((), "above_max_runs_per_sweep", msg, total)
    check_requeue(session, team_id, added)


def check_requeue(session: Session, team_id: UUID, added: int) -> None:
    """`added` runs joining the team's queue in an existing sweep (a retry, an extension):
    the queued cap, as a submission's."""
    team = teams.get_team(session, team_id)
    if team is not None:
        _check_queued(session, team_id, team.max_queued, added)


def _check_queued(session: Session, team_id: UUID, max_queued: int | None, runs: int) -> None:
    """A 422 if `runs` alone pass the cap (they never fit), QueueFull (429) if they would pass
    it with what the team has queued now; the team's submissions take turns meanwhile."""
    if max_queued is None:
        return
    if runs > max_queued:
        msg = f"{runs} runs is above your team's max_queued of {max_queued}"
        raise reject((), "above_max_queued", msg, runs)
    teams.serialize_submissions(session, team_id)
    queued = teams.queued_runs(session, team_id)
    if queued + runs > max_queued:
        raise QueueFull(
            f"your team has {queued} runs queued; {runs} more would pass its max_queued of "
            f"{max_queued}",
            QUEUE_FULL_RETRY_AFTER_S,
        )


def standing(session: Session, team_id: UUID) -> Standing:
    team = teams.get_team(session, team_id)
    if team is None:
        raise LookupError(team_id)
    return Standing(
        name=team.name,
        weight=team.weight,
        max_running=team.max_running,
        max_queued=team.max_queued,
        max_runs_per_sweep=team.max_runs_per_sweep,
        max_priority=MAX_PRIORITY if team.max_priority is None else team.max_priority,
        running=teams.running_runs(session).get(team_id, 0),
        queued=teams.queued_runs(session, team_id),
    )
