"""The two shapes of a log line: JSON, one object per line, for machines (`LOG_FORMAT=json`),
and text with the context as `key=value`, for people (`LOG_FORMAT=text`).

Both carry the same fields: the bound context (app.logs.context), then whatever the call
passed with `extra=`, each passed through app.logs.redaction, as are the message and any
exception. A JSON line never spans two lines, whatever the message holds.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from app.logs import context
from app.logs.redaction import redact_secrets

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
}
# JSON leaves these raw with ensure_ascii=False, and str.splitlines() (like some log
# shippers) would break a line at them.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_ACCESS_LOGGER = "uvicorn.access"


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The context bound where the record was logged, then its `extra=` fields."""
    fields = context.current()
    for name, value in record.__dict__.items():
        if name not in _STANDARD and not name.startswith("_"):
            fields[name] = redact_secrets(value) if isinstance(value, str) else value
    return fields


def _access_fields(record: logging.LogRecord) -> dict[str, object]:
    """uvicorn's access line as fields: `(client, method, path, http_version, status)`."""
    args = record.args
    if record.name != _ACCESS_LOGGER or not isinstance(args, tuple) or len(args) != 5:
        return {}
    client, method, path, _, status = args
    return {"client": client, "method": method, "path": redact_secrets(str(path)), "status": status}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_secrets(record.getMessage()),
        }
        line.update(_access_fields(record))
        line.update(record_fields(record))
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = redact_secrets(record.exc_text)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        text = json.dumps(line, ensure_ascii=False, default=str, separators=(",", ":"))
        return text.translate(_LINE_BREAKS)


class TextFormatter(logging.Formatter):
    """`2026-12-07 10:00:00,123 INFO workers.execution run_succeeded … sweep_id=… run_index=3`"""

    def format(self, record: logging.LogRecord) -> str:
        message = redact_secrets(record.getMessage())
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {message}"
        pairs = " ".join(f"{name}={_text_value(v)}" for name, v in record_fields(record).items())
        if pairs:
            line = f"{line} {pairs}"
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{redact_secrets(record.exc_text)}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


def _utc_iso(created: float) -> str:
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _text_value(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in "\"'=" for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text
