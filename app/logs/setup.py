"""The one logging setup of every entry point: the API (`python -m app.serve`, and uvicorn's
own access and error logs through the same formatter), `make run`, the Celery worker and the
reconciler. The ComfyUI stand-in is a program of its own and keeps its own.

`LOG_FORMAT` picks the line shape (json or text); unset, a terminal gets text and anything
else (a file, a pipe, a container's log) gets JSON. `LOG_LEVEL` sets the threshold.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any, Literal

from app.settings import Settings

LogFormat = Literal["json", "text"]
_FORMATTERS: dict[LogFormat, str] = {
    "json": "app.logs.formatting.JsonFormatter",
    "text": "app.logs.formatting.TextFormatter",
}


def log_format(settings: Settings, fallback: LogFormat | None = None) -> LogFormat:
    """LOG_FORMAT if set, else the entry point's own choice, else by whether stderr is a
    terminal."""
    if settings.log_format is not None:
        return settings.log_format
    if fallback is not None:
        return fallback
    return "text" if sys.stderr.isatty() else "json"


def logging_config(settings: Settings, fallback: LogFormat | None = None) -> dict[str, Any]:
    """A `dictConfig` for the process; also what uvicorn gets as `log_config`, so each of
    its worker processes sets itself up the same way."""
    formatter = {"()": _FORMATTERS[log_format(settings, fallback)]}
    return {
        "version": 1,
        # Loggers created at import (one per module) must keep working.
        "disable_existing_loggers": False,
        # uvicorn writes `use_colors` into these two when told to; both are ours.
        "formatters": {"default": formatter, "access": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        # uvicorn's loggers lose their own handlers and write through ours.
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
            # A line per HTTP call (every ComfyUI request, every health probe) at INFO.
            "httpx": {"level": "WARNING"},
        },
    }


def configure_logging(settings: Settings, fallback: LogFormat | None = None) -> None:
    """Replace whatever logging the process has with ours; safe to call again."""
    logging.config.dictConfig(logging_config(settings, fallback))
    logging.captureWarnings(True)  # warnings become log lines, not stray text on stderr
