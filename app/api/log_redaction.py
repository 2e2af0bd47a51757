"""Keeps signed-link tokens out of access logs.

A contact-sheet link carries its authority in `?token=`, and uvicorn's access log writes every
request's path with its query string. Anyone who can read the logs could open the sweep until
the token expires, so the token's value is replaced before the record is formatted.
"""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
_TOKEN = re.compile(r"(?i)([?&]token=)[^&#\s\"]*")
REDACTED = "[redacted]"


def redact_tokens(text: str) -> str:
    return _TOKEN.sub(rf"\g<1>{REDACTED}", text)


class TokenRedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_tokens(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def install_token_redaction(logger_name: str = ACCESS_LOGGER) -> None:
    """Idempotent: one filter per logger, however many apps a process creates."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
        logger.addFilter(TokenRedactingFilter())
