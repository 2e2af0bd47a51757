"""What the log lines of one request or one task have in common: its request id, team,
sweep, run, prompt and instance, bound once at the edge instead of passed to every call.

A scope is a mutable set of fields held in a context variable. `bind` adds to the scope in
place, so a field bound in a worker thread (FastAPI runs sync dependencies in one, with a
copy of the context) is seen by the lines the request logs afterwards on the event loop.
`bound` adds fields for a block only. Outside any scope, `bind` keeps its fields in the
current context alone and never in one shared by the whole process.

A trace id (OpenTelemetry, later) is one more field bound by the same middleware and the
same task hooks that bind the request id and the run today.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

# The fields the service binds, in the order lines show them; `extra=` may add others.
REQUEST_ID = "request_id"
TEAM = "team"
TASK_ID = "task_id"
TASK = "task"
SWEEP_ID = "sweep_id"
RUN_ID = "run_id"
RUN_INDEX = "run_index"
ATTEMPT = "attempt"
PROMPT_ID = "prompt_id"
INSTANCE = "instance"

Fields = dict[str, object]
_fields: ContextVar[Fields | None] = ContextVar("log_fields", default=None)


def current() -> Fields:
    """A copy of the fields bound here."""
    return dict(_fields.get() or {})


def open_scope(**fields: object) -> Token[Fields | None]:
    """A fresh scope for one request or one task, nothing inherited; give the token back to
    `close_scope` when it ends (`scope` does both around a block)."""
    return _fields.set(dict(fields))


def close_scope(token: Token[Fields | None]) -> None:
    _fields.reset(token)


@contextmanager
def scope(**fields: object) -> Iterator[None]:
    token = open_scope(**fields)
    try:
        yield
    finally:
        close_scope(token)


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """The current fields and these, for the block."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def bind(**fields: object) -> None:
    """Add to the current scope, for the rest of it and everything sharing it."""
    scoped = _fields.get()
    if scoped is None:
        _fields.set(dict(fields))
    else:
        scoped.update(fields)
