"""SQL for idempotency keys: claiming one, finding it, recording the answer on one's own claim,
letting go of it, and forgetting old ones. The caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db.models import IdempotencyKey


def add_claim(
    session: Session, claim_id: UUID, team_id: UUID, key: str, request_hash: str, now: datetime
) -> bool:
    """Insert a pending record of the key; False if the team already has one of that key.
    The unique (team_id, key) decides between concurrent claims, not a read before."""
    try:
        # A savepoint, so a lost race leaves the caller's transaction usable for the read.
        with session.begin_nested():
            session.execute(
                sa.insert(IdempotencyKey).values(
                    id=claim_id, team_id=team_id, key=key, request_hash=request_hash, created_at=now
                )
            )
    except IntegrityError:
        return False
    return True


def find(session: Session, team_id: UUID, key: str) -> IdempotencyKey | None:
    query = sa.select(IdempotencyKey).where(
        IdempotencyKey.team_id == team_id, IdempotencyKey.key == key
    )
    return session.scalars(query).one_or_none()


def drop_reusable(
    session: Session, team_id: UUID, key: str, expired_before: datetime, abandoned_before: datetime
) -> None:
    """Delete the key's record if it has expired, or is a claim whose request never answered
    (its process died); a claim still being served is left alone."""
    abandoned = sa.and_(
        IdempotencyKey.status_code.is_(None), IdempotencyKey.created_at < abandoned_before
    )
    session.execute(
        sa.delete(IdempotencyKey).where(
            IdempotencyKey.team_id == team_id,
            IdempotencyKey.key == key,
            sa.or_(IdempotencyKey.created_at < expired_before, abandoned),
        )
    )


def record_answer(
    session: Session,
    claim_id: UUID,
    status_code: int,
    headers: Sequence[Sequence[str]],
    body: bytes,
) -> bool:
    """Store the answer on the pending claim `claim_id`; False if that claim is gone."""
    result = session.execute(
        sa.update(IdempotencyKey)
        .where(IdempotencyKey.id == claim_id, IdempotencyKey.status_code.is_(None))
        .values(
            status_code=status_code,
            response_headers=[list(pair) for pair in headers],
            response_body=body,
        )
    )
    return cast(sa.CursorResult[Any], result).rowcount == 1


def release(session: Session, claim_id: UUID) -> None:
    """Delete the pending claim, so a retry with the key starts afresh."""
    session.execute(
        sa.delete(IdempotencyKey).where(
            IdempotencyKey.id == claim_id, IdempotencyKey.status_code.is_(None)
        )
    )


def delete_expired(session: Session, before: datetime) -> int:
    result = session.execute(sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < before))
    return cast(sa.CursorResult[Any], result).rowcount
