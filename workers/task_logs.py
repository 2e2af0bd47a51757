"""Logging in a worker process: our setup (app.logs.setup) instead of Celery's, and a log
scope per task, so every line a task logs carries its task id, the sweep or run it was sent
for and, once it holds one, the claimed run with its prompt id and instance."""

from __future__ import annotations

import inspect
from contextvars import Token
from typing import Any

from celery.signals import celeryd_init, setup_logging, task_postrun, task_prerun

from app.logs import context
from app.logs.setup import configure_logging, log_format
from app.settings import Settings
from app.stores.runs import Claim

# Task parameters that name what the task is for; tasks take ids, never objects.
_ID_PARAMETERS = (context.SWEEP_ID, context.RUN_ID)
_scopes: dict[str, Token[context.Fields | None]] = {}
_signatures: dict[str, inspect.Signature] = {}


def claim_fields(claim: Claim) -> dict[str, object]:
    """A claimed run's fields; its prompt id on the instance is the run's id."""
    return {
        context.SWEEP_ID: str(claim.sweep_id),
        context.RUN_ID: str(claim.run_id),
        context.RUN_INDEX: claim.index,
        context.ATTEMPT: claim.attempt,
        context.PROMPT_ID: str(claim.run_id),
        context.INSTANCE: claim.instance,
    }


def install(settings: Settings) -> None:
    """Connect the worker's logging signals (strongly: the receivers are closures)."""

    def configure(**_: object) -> None:
        # Any receiver of this signal stops Celery from setting up logging itself, its
        # --loglevel included: LOG_LEVEL decides.
        configure_logging(settings)

    def take_over(instance: Any, **_: object) -> None:
        # The worker's first signal, before its own warnings (running as root, say): from
        # here they are log lines.
        configure_logging(settings)
        # Celery prints its start banner straight to stdout, around logging: in a JSON log
        # it would be a dozen lines that are not JSON. Its "ready" line is logged anyway.
        if log_format(settings) == "json":
            instance.quiet = True

    celeryd_init.connect(take_over, weak=False)
    setup_logging.connect(configure, weak=False)
    task_prerun.connect(_open_scope, weak=False)
    task_postrun.connect(_close_scope, weak=False)


def _open_scope(
    task_id: str, task: Any, args: tuple[Any, ...], kwargs: dict[str, Any], **_: Any
) -> None:
    fields: dict[str, object] = {context.TASK_ID: task_id, context.TASK: task.name}
    fields.update(_ids_in(task, args, kwargs))
    _scopes[task_id] = context.open_scope(**fields)


def _close_scope(task_id: str, **_: object) -> None:
    token = _scopes.pop(task_id, None)
    if token is not None:
        context.close_scope(token)


def _ids_in(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, object]:
    signature = _signatures.get(task.name)
    if signature is None:
        signature = _signatures[task.name] = inspect.signature(task.run)
    try:
        given = signature.bind_partial(*args, **kwargs).arguments
    except TypeError:
        return {}  # a malformed message; the task itself will say so
    return {name: given[name] for name in _ID_PARAMETERS if given.get(name) is not None}
