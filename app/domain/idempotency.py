"""What an `Idempotency-Key` may be, and the fingerprint that tells a repeat of a request from
a different request under the same key. Pure: no I/O."""

from __future__ import annotations

import hashlib
import json
import re

from app.domain.problems import Problem

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# Printable ASCII, no spaces at the ends: what fits a header value unchanged on every client.
_KEY = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")


def key_problem(key: str) -> Problem | None:
    """Why `key` cannot be an idempotency key, or None if it can."""
    if 1 <= len(key) <= MAX_KEY_LENGTH and _KEY.fullmatch(key):
        return None
    msg = (
        f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters "
        f"(a UUID is a good choice); got {len(key)} characters"
    )
    return Problem(("header", HEADER), "idempotency_key_invalid", msg, key[:MAX_KEY_LENGTH])


def request_fingerprint(method: str, target: str, body: bytes) -> str:
    """sha256 hex of the method, the path with its query, and the body; a JSON body counts
    by its content (key order and spacing aside), so a client re-encoding it is a repeat."""
    digest = hashlib.sha256(f"{method.upper()} {target}\n".encode())
    digest.update(_canonical(body))
    return digest.hexdigest()


def _canonical(body: bytes) -> bytes:
    try:
        parsed = json.loads(body)
    except ValueError:  # not JSON (or not UTF-8): the bytes themselves
        return body
    return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def answer_is_kept(status_code: int) -> bool:
    """Whether a repeat of the request gets this answer again. A 4xx is the request's own
    outcome and stays (as at Stripe); a 5xx or a 429 says "try again later", so the key is
    let go and the retry does the work."""
    return status_code < 500 and status_code != 429
