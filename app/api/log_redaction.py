"""Keeps signed-link tokens out of access logs.

A contact-sheet link carries its authority in `?token=`, and uvicorn's access log writes every
request's path with its query string. Anyone who can read the logs could open the sweep until
the token expires, so the token's value is replaced before the record is formatted (API
keys too, should a client put one in a URL). Our formatters redact every line as well
(app.logs.redaction); this filter covers any other handler attached to the access log.
"""

from __future__ import annotations

import logging

from app.logs.redaction import redact_secrets, redact_tokens

__all__ = ["ACCESS_LOGGER", "TokenRedactingFilter", "install_token_redaction", "redact_tokens"]

ACCESS_LOGGER = "uvicorn.access"


class TokenRedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_secrets(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_secrets(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def install_token_redaction(logger_name: str = ACCESS_LOGGER) -> None:
    """Idempotent: one filter per logger, however many apps a process creates."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, TokenRedactingFilter) for f in logger.filters):
        logger.addFilter(TokenRedactingFilter())
