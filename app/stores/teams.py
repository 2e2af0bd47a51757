"""SQL for teams and their API keys: creation, lookup by hash, revocation, listing; a team's
fair-share weight and caps, and its queued and running runs counted from bounded reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, contains_eager

from app.db.base import utc_now
from app.db.models import ActiveSweep, ApiKey, Sweep, Team
from app.stores.claims import running_teams_query


def get_or_create_team(session: Session, name: str) -> Team:
    team = _find_team(session, name)
    if team is not None:
        return team
    try:
        # A savepoint, so losing a race with a concurrent creator leaves the caller's
        # transaction usable for the re-read below.
        with session.begin_nested():
            team = Team(name=name)
            session.add(team)
    except IntegrityError:
        team = _find_team(session, name)
        if team is None:
            raise
    return team


def add_key(
    session: Session, team_id: UUID, key_hash: str, prefix: str, label: str, role: str = "member"
) -> ApiKey:
    key = ApiKey(team_id=team_id, key_hash=key_hash, prefix=prefix, label=label, role=role)
    session.add(key)
    session.flush()
    return key


def find_active_key(session: Session, key_hash: str) -> ApiKey | None:
    """The key alone, its team not loaded (`key.team` raises): every request runs this, and
    a caller needs only the team's id."""
    query = sa.select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    return session.scalars(query).one_or_none()


def revoke_key(session: Session, prefix_or_id: str) -> int:
    """Revoke the active keys whose prefix or id is `prefix_or_id`; returns how many."""
    match = ApiKey.prefix == prefix_or_id
    key_id = _as_uuid(prefix_or_id)
    if key_id is not None:
        match = sa.or_(match, ApiKey.id == key_id)
    query = (
        sa.update(ApiKey)
        .where(match, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(session.execute(query))


def list_keys(session: Session, team_name: str | None) -> list[ApiKey]:
    """Every key, revoked ones included, oldest first; only `team_name`'s when given."""
    query = (
        sa.select(ApiKey)
        .join(ApiKey.team)
        .options(contains_eager(ApiKey.team))
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    if team_name is not None:
        query = query.where(Team.name == team_name)
    return list(session.scalars(query))


def touch_key(session: Session, key_id: UUID, now: datetime, stale_before: datetime) -> bool:
    """Record `now` as the key's last use unless it was recorded at or after `stale_before`;
    True if this call wrote it."""
    # The condition is in the WHERE, not read beforehand: of concurrent requests that all saw
    # a stale time, the first writes and the rest, re-checking after its commit, match nothing.
    stale = sa.or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale_before)
    query = (
        sa.update(ApiKey)
        .where(ApiKey.id == key_id, stale)
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(session.execute(query)) == 1


# What `comfy-sweep teams set` may change; None in a cap means no cap.
LIMITS = ("weight", "max_running", "max_queued", "max_runs_per_sweep", "max_priority")


def set_limits(session: Session, name: str, values: dict[str, int | None]) -> Team:
    """Set the named team's weight or caps (the team is created if new)."""
    unknown = set(values) - set(LIMITS)
    if unknown:
        raise ValueError(f"not a team limit: {', '.join(sorted(unknown))}")
    team = get_or_create_team(session, name)
    for field, value in values.items():
        setattr(team, field, value)
    session.flush()
    return team


def get_team(session: Session, team_id: UUID) -> Team | None:
    return session.get(Team, team_id)


def list_teams(session: Session) -> list[Team]:
    return list(session.scalars(sa.select(Team).order_by(Team.name)))


def serialize_submissions(session: Session, team_id: UUID) -> None:
    """Make the team's submissions take turns until this transaction ends, so each one's
    check of the queued cap sees the runs the one before it stored. A transaction-scoped
    advisory lock on Postgres, not the team row: claims lock that row, and a submission
    storing 10,000 runs must not hold up the team's claims. SQLite serializes every writer."""
    if session.get_bind().dialect.name != "postgresql":
        return
    key = int.from_bytes(team_id.bytes[:8], "big", signed=True)
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


def queued_runs(session: Session, team_id: UUID) -> int:
    """The team's queued runs, of sweeps started or not, from the counters of its sweeps with
    queued work: as many rows read as it has such sweeps."""
    query = (
        sa.select(sa.func.coalesce(sa.func.sum(Sweep.queued_count), 0))
        .select_from(ActiveSweep)
        .join(Sweep, Sweep.id == ActiveSweep.sweep_id)
        .where(ActiveSweep.team_id == team_id)
    )
    return session.scalar(query) or 0


def running_runs(session: Session) -> dict[UUID, int]:
    """Running runs per team, from the runs in flight only."""
    counts: dict[UUID, int] = {}
    for team_id in session.scalars(running_teams_query()):
        counts[team_id] = counts.get(team_id, 0) + 1
    return counts


def _find_team(session: Session, name: str) -> Team | None:
    return session.scalars(sa.select(Team).where(Team.name == name)).one_or_none()


def _as_uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


def _rowcount(result: sa.Result[Any]) -> int:
    # An UPDATE's result is a CursorResult, which carries the matched row count.
    return cast(sa.CursorResult[Any], result).rowcount
