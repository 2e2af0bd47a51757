"""The worker process's Celery application: `celery -A workers.celery_app worker`."""

from __future__ import annotations

from app.queue import make_celery
from app.settings import Settings

app = make_celery(Settings())
