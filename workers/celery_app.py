"""The worker process's Celery application: `celery -A workers.celery_app worker`."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import (
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutting_down,
)
from sqlalchemy.orm import configure_mappers

from app.db import models  # noqa: F401  (the mappers configured below)
from app.queue import make_celery
from app.settings import Settings
from app.telemetry.tracing import (
    WORKER_SERVICE,
    check_tracing_settings,
    start_tracing,
    stop_tracing,
)
from workers import metrics, stopping, task_logs
from workers.runtime import current_runtime
from workers.tasks import register_tasks

settings = Settings()
check_tracing_settings()  # a bad OTEL_* value stops the worker here, not each pool process
app = make_celery(settings)
register_tasks(app)
task_logs.install(settings)
# SQLAlchemy configures mappers on a process's first ORM query (about 10 ms): done here, before
# the pool forks, every pool process inherits them rather than paying it during a run.
configure_mappers()

# The main process's WorkController, for the pids of its pool at shutdown.
_controller: list[Any] = []


@worker_init.connect
def _remember_controller(sender: Any, **_: object) -> None:
    _controller[:] = [sender]


@worker_shutting_down.connect
def _hand_back_runs(**_: object) -> None:
    # Runs in the main process's signal handler: it only sends signals on. A pool that is
    # not up (or not prefork) has no pids to tell.
    try:
        pids = _controller[0].pool.info.get("processes") if _controller else None
    except Exception:
        pids = None
    if pids:
        stopping.tell(int(pid) for pid in pids)
    else:
        stopping.notice.request()  # the solo pool: tasks run in this very process


@worker_process_init.connect
def _configure_child(**_: object) -> None:
    # After the fork: an exporter's background thread would not survive it.
    start_tracing(WORKER_SERVICE)
    stopping.listen()
    try:
        current_runtime().warm_up()
    except Exception:
        # Only a head start: the first task meets the same failure and reports it.
        logging.getLogger(__name__).warning("warm_up_failed", exc_info=True)


@worker_process_shutdown.connect
def _metrics_child_exited(pid: int | None = None, **_: object) -> None:
    metrics.mark_dead(pid or os.getpid())


@worker_process_shutdown.connect
def _close_child(**_: object) -> None:
    # Sends the last batch of history deletions; a child with no runtime has nothing to send.
    if not current_runtime.cache_info().currsize:
        return
    try:
        current_runtime().comfy.close()
    except Exception:
        logging.getLogger(__name__).warning("close_failed", exc_info=True)


@worker_process_shutdown.connect
def _flush_traces(**_: object) -> None:
    # Last, after the history deletions' calls; the SDK's own flush at exit never runs here.
    stop_tracing()
