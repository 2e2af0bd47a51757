"""Remembers who a key belongs to for `TTL_S`, so a polling client's requests do not each
look their key up in the database.

Why: the lookup was a query, a thread hop (sync code runs on a worker thread) and an ORM
object per request, about a fifth of the API's CPU per status read; a farm polls with a few
keys at hundreds of requests a second. The bound it costs: a key revoked by another process
(`comfy-sweep keys revoke`, another API worker) is still accepted here for at most `TTL_S`;
one revoked through `app.services.keys` in this process is refused at once. Only keys found
active are kept, so a new key works at once and an unknown one is looked up every time. Keys
are kept by their hash, never as plaintext. With auth off, the one local operator is kept
as the token None.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from app.services import keys
from app.services.keys import Caller

TTL_S = 1.0
MAX_KEYS = 10_000  # more live keys than this at once: forget them all and start over


class CallerCache:
    def __init__(self, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._callers: dict[str, tuple[Caller, float, int]] = {}

    def get(self, token: str | None) -> Caller | None:
        """The caller remembered for `token`, or None when it must be looked up."""
        kept = self._callers.get(_cache_key(token))
        if kept is None:
            return None
        caller, expires_at, revocations = kept
        if self.clock() >= expires_at or revocations != keys.revocations():
            return None
        return caller

    def remember(self, token: str | None, caller: Caller, revocations: int) -> None:
        """`revocations` is `keys.revocations()` as it was before the lookup began, so a key
        revoked here while it was being looked up is not remembered as active."""
        if len(self._callers) >= MAX_KEYS:
            self._callers.clear()
        self._callers[_cache_key(token)] = (caller, self.clock() + self.ttl_s, revocations)


def _cache_key(token: str | None) -> str:
    # A hash is never empty, so the local operator cannot be taken for a key.
    return "" if token is None else keys.hash_key(token)
