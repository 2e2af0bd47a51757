"""Idempotent requests: a team's `Idempotency-Key` is claimed before its request runs, its
answer recorded after, and that answer replayed to a repeat of the request within a day.

Each step is its own short transaction, committed here: the claim must be visible to a
concurrent request before the work starts, and no transaction is held open while the route
runs. Two requests with one key race on the unique (team_id, key) insert; the loser is told
the key is in use (409) and retries, never doing the work a second time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.domain.idempotency import HEADER, key_problem
from app.domain.problems import Problem
from app.services import keys
from app.stores import idempotency_keys as store
from app.stores import teams

log = logging.getLogger(__name__)

KEY_TTL = timedelta(hours=24)
# A claim still unanswered after this long belongs to a request whose process died: no
# request of ours runs that long (the slowest, a 10,000-run submission, takes seconds).
ABANDONED_AFTER = timedelta(minutes=5)
# What a request told its key is in use should wait before trying again.
IN_USE_RETRY_AFTER_S = 1


@dataclass(frozen=True)
class Claimed:
    """This request holds the key: it runs, and its answer is recorded under `claim_id`."""

    claim_id: UUID


@dataclass(frozen=True)
class Replay:
    """The answer the first request with the key got, to be sent again unchanged."""

    status_code: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Refused:
    """The request is not run: a bad key (422), the key reused for another request (422),
    or the key's first request still being served (409)."""

    status_code: int
    problem: Problem


Claim = Claimed | Replay | Refused


def team_of(session: Session, auth_enabled: bool, token: str | None) -> UUID | None:
    """The team a bearer token acts for, found as the auth dependency finds it; None when
    the route's own auth will refuse the request. Read only: the key's use is recorded by
    that dependency, whose commit then releases SQLite's write lock as it always did."""
    if not auth_enabled:
        return keys.local_team(session)
    if token is None or not token.startswith(keys.KEY_PREFIX):
        return None
    key = teams.find_active_key(session, keys.hash_key(token))
    return None if key is None else key.team_id


def claim_key(
    session: Session, team_id: UUID, key: str, request_hash: str, now: datetime | None = None
) -> Claim:
    problem = key_problem(key)
    if problem is not None:
        return Refused(422, problem)
    now = now or utc_now()
    store.drop_reusable(session, team_id, key, now - KEY_TTL, now - ABANDONED_AFTER)
    claim_id = uuid4()
    claimed = store.add_claim(session, claim_id, team_id, key, request_hash, now)
    found = None if claimed else store.find(session, team_id, key)
    session.commit()
    if claimed:
        return Claimed(claim_id)
    if found is not None and found.request_hash != request_hash:
        msg = f"this {HEADER} was used for a different request (method, path or body)"
        return Refused(422, Problem(("header", HEADER), "idempotency_key_reused", msg, key))
    if found is None or found.status_code is None:
        # Pending, or released by a failed first request just now: either way, retry.
        msg = f"a request with this {HEADER} is still being served; retry shortly"
        return Refused(409, Problem(("header", HEADER), "idempotency_key_in_use", msg, key))
    headers = [(name, value) for name, value in found.response_headers or []]
    return Replay(found.status_code, headers, found.response_body or b"")


def record_answer(
    session: Session,
    claim_id: UUID,
    status_code: int,
    headers: Sequence[tuple[str, str]],
    body: bytes,
) -> None:
    if not store.record_answer(session, claim_id, status_code, headers, body):
        # Taken over as abandoned while this request ran (ABANDONED_AFTER): the newer claim's
        # answer is the one a repeat gets.
        log.warning("idempotency_claim_lost claim=%s status=%s", claim_id, status_code)
    session.commit()


def release(session: Session, claim_id: UUID) -> None:
    store.release(session, claim_id)
    session.commit()


def forget_expired(session: Session, now: datetime | None = None) -> int:
    """Delete records past KEY_TTL; claims already ignore them, this keeps the table small."""
    forgotten = store.delete_expired(session, (now or utc_now()) - KEY_TTL)
    session.commit()
    return forgotten
