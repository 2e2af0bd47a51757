"""Short-lived signed links that let a browser read one sweep without an API key.

A browser opening a page cannot send `Authorization`, nor can its `<video>` or a zip
download. So the API (with the key) mints a token, and the page and its files accept it in
`?token=`. A token is `<expires>.<mac>`: HMAC-SHA256 under LINK_SECRET of a purpose tag, the
sweep id and the expiry (unix seconds). It grants reading that one sweep's contact sheet,
files and export until it expires, and nothing else: no other sweep, no writes, no key.

Never log a token. Pages carrying one are sent with `Referrer-Policy: no-referrer` and
`Cache-Control: no-store`, so it does not leak through Referer headers or caches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from uuid import UUID

from app.settings import Settings

log = logging.getLogger(__name__)

# Part of what is signed, so a token minted for another use can never open a sweep.
_PURPOSE = b"comfy-sweep/sweep-read/v1"
DEFAULT_TTL_S = 3600.0
_MAX_TOKEN_LENGTH = 64


@dataclass(frozen=True, slots=True)
class SignedLink:
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class LinkSigner:
    secret: bytes
    ttl_s: float = DEFAULT_TTL_S

    def sign(self, sweep_id: UUID, now: float | None = None) -> SignedLink:
        expires = int((time.time() if now is None else now) + self.ttl_s)
        token = f"{expires}.{self._mac(sweep_id, expires)}"
        return SignedLink(token, datetime.fromtimestamp(expires, UTC))

    def verify(self, sweep_id: UUID, token: str, now: float | None = None) -> bool:
        """Whether `token` was minted for this sweep by this secret and has not expired."""
        if len(token) > _MAX_TOKEN_LENGTH or not token.isascii():
            return False
        expires_text, _, mac = token.partition(".")
        if not expires_text.isdigit() or len(expires_text) > 12:
            return False
        expires = int(expires_text)
        # Compared in constant time, and before the clock, so timing says nothing about a MAC.
        valid = hmac.compare_digest(mac.encode(), self._mac(sweep_id, expires).encode())
        return valid and (time.time() if now is None else now) < expires

    def _mac(self, sweep_id: UUID, expires: int) -> str:
        message = b"\n".join([_PURPOSE, sweep_id.bytes, str(expires).encode()])
        digest = hmac.new(self.secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def link_signer(settings: Settings) -> LinkSigner:
    """The signer for LINK_SECRET and LINK_TTL_S."""
    configured = settings.link_secret
    secret = configured.get_secret_value().encode() if configured is not None else None
    return LinkSigner(secret or _process_secret(), settings.link_ttl_s)


@cache
def _process_secret() -> bytes:
    # Safe (random, never stored) but local: links minted by one API process fail on another
    # and die with a restart. Several API processes need a shared LINK_SECRET.
    log.warning("link_secret_unset signed links work only within this API process")
    return secrets.token_bytes(32)
