"""The worker process's Celery application: `celery -A workers.celery_app worker`."""

from __future__ import annotations

import logging

from celery.signals import worker_process_init, worker_process_shutdown

from app.queue import make_celery
from app.settings import Settings
from workers.runtime import current_runtime
from workers.tasks import register_tasks

settings = Settings()
app = make_celery(settings)
register_tasks(app)


@worker_process_init.connect
def _configure_child(**_: object) -> None:
    # Our modules log event-style lines; Celery's own formatter adds the task context.
    logging.getLogger("app").setLevel(logging.INFO)
    logging.getLogger("workers").setLevel(logging.INFO)
    try:
        current_runtime().warm_up()
    except Exception:
        # Only a head start: the first task meets the same failure and reports it.
        logging.getLogger(__name__).warning("warm_up_failed", exc_info=True)


@worker_process_shutdown.connect
def _close_child(**_: object) -> None:
    # Sends the last batch of history deletions; a child with no runtime has nothing to send.
    if not current_runtime.cache_info().currsize:
        return
    try:
        current_runtime().comfy.close()
    except Exception:
        logging.getLogger(__name__).warning("close_failed", exc_info=True)
