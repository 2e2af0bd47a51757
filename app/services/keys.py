"""API keys: minting, checking and revoking. Keys are shown once and stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import KEY_ROLES, ApiKey
from app.stores import teams

KEY_PREFIX = "csk_"
# Enough of the key to tell keys apart in listings and logs without revealing it.
VISIBLE_CHARS = 12
# How stale a key's "last used" may get. Every request authenticates, so recording each use
# would turn every read into a write on one hot row; `keys list` shows minutes anyway.
LAST_USED_RESOLUTION = timedelta(seconds=60)
# Revocations made by this process so far: the API's cache of callers (app.api.callers)
# forgets every key it holds when this moves, so a revocation here takes effect at once.
_revocations = 0


@dataclass(frozen=True)
class Caller:
    """Who a request acts for: the key's team, the key (None with auth off) and its role."""

    team_id: UUID
    key_id: UUID | None
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class MintedKey:
    plaintext: str
    prefix: str
    team_name: str


def hash_key(plaintext: str) -> str:
    # Keys are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_key(
    session: Session, team_name: str, label: str = "", role: str = "member"
) -> MintedKey:
    if role not in KEY_ROLES:
        raise ValueError(f"role must be one of {', '.join(KEY_ROLES)}, not {role!r}")
    team = teams.get_or_create_team(session, team_name)
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = plaintext[:VISIBLE_CHARS]
    teams.add_key(session, team.id, hash_key(plaintext), prefix, label, role)
    session.commit()
    return MintedKey(plaintext=plaintext, prefix=prefix, team_name=team.name)


def team_for_key(session: Session, plaintext: str) -> UUID | None:
    """The team a key belongs to, or None for an unknown or revoked key."""
    caller = caller_for_key(session, plaintext)
    return None if caller is None else caller.team_id


def caller_for_key(session: Session, plaintext: str) -> Caller | None:
    """The key's team and role, or None for an unknown or revoked key."""
    if not plaintext.startswith(KEY_PREFIX):
        return None
    key = teams.find_active_key(session, hash_key(plaintext))
    if key is None:
        return None
    _record_use(session, key)
    return Caller(team_id=key.team_id, key_id=key.id, role=key.role)


def _record_use(session: Session, key: ApiKey) -> None:
    now = utc_now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    if teams.touch_key(session, key.id, now, stale_before=now - LAST_USED_RESOLUTION):
        # At once, before the route runs: the row lock is held only this long, and read-only
        # requests, which never commit, would otherwise roll the write back.
        session.commit()


def local_team(session: Session) -> UUID:
    """The team that owns everything when auth is explicitly turned off."""
    team = teams.get_or_create_team(session, "local")
    session.commit()
    return team.id


def revocations() -> int:
    """How many times this process has revoked keys: a number that only grows."""
    return _revocations


def _revoked() -> None:
    global _revocations
    _revocations += 1


def revoke_key(session: Session, prefix_or_id: str) -> int:
    revoked = teams.revoke_key(session, prefix_or_id)
    session.commit()
    _revoked()
    return revoked


def revoke_labelled(session: Session, team_name: str, label: str) -> int:
    """Revoke a team's keys with this label; used to retire the previous local run's key."""
    prefixes = [
        k.prefix
        for k in teams.list_keys(session, team_name)
        if k.label == label and k.revoked_at is None
    ]
    revoked = sum(teams.revoke_key(session, prefix) for prefix in prefixes)
    session.commit()
    _revoked()
    return revoked
