"""The Celery application, configured in one place with every reliability setting.

The database is the record of what must run; the broker only carries hints. So tasks are
acknowledged late, requeued when their worker dies, never prefetched more than one at a
time, and carry ids, never objects. When no Redis is configured or answering, an embedded
SQLite broker (kombu's SQLAlchemy transport) lets `make run` work with no server at all.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"

# Task names, shared by the API (producer) and the workers (consumers); the API never
# imports worker code, only these names.
START_SWEEP = "sweeps.start"
WORK = "runs.work"
RESUME_RUN = "runs.resume"
FINALIZE_SWEEP = "sweeps.finalize"
CANCEL_PROMPTS = "sweeps.cancel_prompts"


def broker_url(settings: Settings) -> str:
    if settings.broker_url:
        return settings.broker_url
    if settings.redis_url:
        return settings.redis_url
    if _answers(LOCAL_REDIS_URL):
        return LOCAL_REDIS_URL
    return f"sqla+sqlite:///{PROJECT_ROOT / 'var' / 'broker.db'}"


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 0.3):
            return True
    except OSError:
        return False


def make_celery(settings: Settings) -> Celery:
    broker = broker_url(settings)
    app = Celery("comfy_sweep", broker=broker)
    if broker.startswith(("redis://", "rediss://")):
        # Redis only: the SQLAlchemy transport hands its options to create_engine. Why the
        # lease, not this, recovers a dead worker: Settings.visibility_timeout_s.
        app.conf.broker_transport_options = {"visibility_timeout": settings.visibility_timeout_s}
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        task_default_queue=settings.queue_name,
        worker_hijack_root_logger=False,
    )
    return app


def marks_redeliveries(broker: str) -> bool:
    """Whether the broker flags a message it delivers again: kombu's Redis transport sets
    `delivery_info["redelivered"]` whenever it restores one (a lost worker's rejected task, an
    unacked one past the visibility timeout, a shutdown's hand-back; tests/unit/
    test_redelivery_flag.py holds it to that). Other transports may leave it unset, so only
    Redis's word that a message is a first delivery is taken."""
    return broker.startswith(("redis://", "rediss://"))


def send_after_commit(
    session: Session, celery: Celery, name: str, args: Sequence[object], countdown: float = 0
) -> None:
    """Send a task once the session's transaction commits, never before: a worker must
    never receive an id whose row is not there yet. Dropped if the transaction rolls back."""

    def send(_: Session) -> None:
        try:
            celery.send_task(name, args=list(args), countdown=countdown or None)
        except Exception as error:  # kombu raises many kinds; none may undo a commit
            # The rows are committed; the reconciler re-sends what the database says is owed.
            log.warning("send_failed task=%s error=%s", name, type(error).__name__)

    def forget(_: Session) -> None:
        if event.contains(session, "after_commit", send):
            event.remove(session, "after_commit", send)

    event.listen(session, "after_commit", send, once=True)
    event.listen(session, "after_soft_rollback", lambda s, _: forget(s), once=True)
