"""Which sweep a free instance slot should serve: highest priority first; within a priority,
the team with the fewest running runs per unit of weight (ties: the one waiting longest);
within a team, its sweeps in submission order. Teams at their running cap are left out.

Pure: the caller reads the sweeps with queued work and each team's share, and claims runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from uuid import UUID

# A sweep's priority when its request gives none, and the highest a request may ask for.
DEFAULT_PRIORITY = 50
MAX_PRIORITY = 100


@dataclass(frozen=True, slots=True)
class Waiting:
    """A sweep with queued runs that may be claimed."""

    sweep_id: UUID
    team_id: UUID
    priority: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Share:
    """A team's standing: its weight, its running cap (None: none) and its running runs."""

    weight: int
    max_running: int | None
    running: int

    @property
    def at_cap(self) -> bool:
        return self.max_running is not None and self.running >= self.max_running


@dataclass(frozen=True, slots=True)
class TeamTurn:
    """One team's sweeps at one priority, in the order to try them."""

    team_id: UUID
    sweeps: tuple[UUID, ...]


def serving_order(waiting: Iterable[Waiting], shares: Mapping[UUID, Share]) -> list[TeamTurn]:
    """The turns in the order a free slot should try them."""
    open_teams = {team_id for team_id, share in shares.items() if not share.at_cap}
    # Ties by id: UUIDs order as their canonical strings do (fixed-width hex), without
    # formatting one per sweep on every claim.
    oldest_first = sorted(
        (sweep for sweep in waiting if sweep.team_id in open_teams),
        key=lambda s: (s.created_at, s.sweep_id),
    )
    groups: dict[tuple[int, UUID], list[Waiting]] = {}
    for sweep in oldest_first:
        groups.setdefault((sweep.priority, sweep.team_id), []).append(sweep)
    turns: list[tuple[tuple[int, Fraction, datetime, UUID], TeamTurn]] = []
    for (priority, team_id), ordered in groups.items():
        share = shares[team_id]
        # Exact fractions: 1/3 and 2/6 must tie, and then the longer wait decides.
        load = Fraction(share.running, max(share.weight, 1))
        key = (-priority, load, ordered[0].created_at, team_id)
        turns.append((key, TeamTurn(team_id, tuple(s.sweep_id for s in ordered))))
    return [turn for _, turn in sorted(turns, key=lambda pair: pair[0])]
