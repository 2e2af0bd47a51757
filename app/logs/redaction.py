"""Secrets that must never reach a log line, whoever wrote it: API keys (`csk_…`, also after
`Bearer`), webhook signing secrets (`whsec_…`) and the `?token=` of signed links, which
grant access to a sweep until they expire.

Applied by both formatters to every message, exception and extra field, so a line is clean
whichever logger it came from; `app.api.log_redaction` also filters uvicorn's access log
before any handler sees it.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"
_TOKEN = re.compile(r"(?i)([?&]token=)[^&#\s\"]*")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',]+")
# A whole key is its prefix and 43 characters; the 12-character prefix shown in key listings
# (app.services.keys.VISIBLE_CHARS) is shorter than this and stays readable.
_KEY = re.compile(r"\bcsk_[A-Za-z0-9_-]{16,}")
# Webhook signing secrets (Standard Webhooks, base64 after the prefix).
_WEBHOOK_SECRET = re.compile(r"\bwhsec_[A-Za-z0-9+/=]{16,}")


def redact_tokens(text: str) -> str:
    return _TOKEN.sub(rf"\g<1>{REDACTED}", text)


def redact_secrets(text: str) -> str:
    text = redact_tokens(text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    text = _WEBHOOK_SECRET.sub(f"whsec_{REDACTED}", text)
    return _KEY.sub(f"csk_{REDACTED}", text)
