"""What a worker process holds for its lifetime: settings, database, storage, and the Celery
app to send follow-up messages. Built on first use, after the fork, so no connection is ever
shared between processes. Workflows are not held here: each run's comes from the database
(`workers.workflows`), so a workflow registered later needs no restart."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory
from app.media.storage import Storage
from app.settings import Settings
from workers.comfy_session import ComfySession


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    sessions: sessionmaker[Session]
    storage: Storage
    celery: Celery
    comfy: ComfySession

    def send(self, name: str, *args: object, countdown: float = 0) -> None:
        self.celery.send_task(name, args=list(args), countdown=countdown or None)

    def warm_up(self) -> None:
        """Pay a process's one-time costs (the first database connection, the HTTP stack's
        lazy imports, a client per instance) before its first task, not during it: a worker
        pool forks all its processes at once, and their first runs would otherwise queue on
        the CPU together while every instance waits for its first prompt."""
        with self.sessions() as session:
            session.execute(sa.text("SELECT 1"))
        for instance in self.settings.instances:
            self.comfy.client(instance.url)


def build_runtime(settings: Settings, celery: Celery) -> Runtime:
    return Runtime(
        settings=settings,
        sessions=make_session_factory(make_engine(settings.database_url)),
        storage=Storage(settings.data_dir),
        celery=celery,
        comfy=ComfySession(),
    )


@cache
def current_runtime() -> Runtime:
    from workers.celery_app import app, settings

    return build_runtime(settings, app)
