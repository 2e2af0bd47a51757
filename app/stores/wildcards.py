"""SQL for teams' wildcard lists, always scoped to the owning team. The caller commits."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import WildcardList


def put_list(
    session: Session, team_id: UUID, name: str, entries: Sequence[str]
) -> tuple[WildcardList, bool]:
    """The list stored under `name`, replacing any before it, and whether it is new."""
    found = get_list(session, team_id, name)
    if found is not None:
        found.entries = list(entries)
        found.updated_at = utc_now()
        session.flush()
        return found, False
    try:
        # A savepoint, so losing a race with a concurrent first upload leaves the caller's
        # transaction usable for the replace below.
        with session.begin_nested():
            created = WildcardList(team_id=team_id, name=name, entries=list(entries))
            session.add(created)
        return created, True
    except IntegrityError:
        return put_list(session, team_id, name, entries)


def get_list(session: Session, team_id: UUID, name: str) -> WildcardList | None:
    query = sa.select(WildcardList).where(
        WildcardList.team_id == team_id, WildcardList.name == name
    )
    return session.scalars(query).one_or_none()


def list_lists(session: Session, team_id: UUID) -> list[WildcardList]:
    query = (
        sa.select(WildcardList).where(WildcardList.team_id == team_id).order_by(WildcardList.name)
    )
    return list(session.scalars(query))


def entries_of(
    session: Session, team_id: UUID, names: Collection[str]
) -> dict[str, tuple[str, ...]]:
    """The entries of each named list the team has; names it lacks are left out."""
    if not names:
        return {}
    query = sa.select(WildcardList.name, WildcardList.entries).where(
        WildcardList.team_id == team_id, WildcardList.name.in_(sorted(names))
    )
    return {name: tuple(entries) for name, entries in session.execute(query)}


def delete_list(session: Session, team_id: UUID, name: str) -> bool:
    result = session.execute(
        sa.delete(WildcardList).where(WildcardList.team_id == team_id, WildcardList.name == name)
    )
    return bool(getattr(result, "rowcount", 0))
