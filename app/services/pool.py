"""API-side use cases of the instance pool: list it, drain and undrain an instance. The
configured list (COMFY_INSTANCES) is the authority on which instances exist; their rows
hold what was learnt about them. They own the commit."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from celery import Celery
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.queue import WORK, send_after_commit
from app.settings import InstanceConfig
from app.stores import instances as instance_store

log = logging.getLogger(__name__)


def instance_id(url: str) -> str:
    """A short id that stays the same while the URL does: URLs do not fit a path segment."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class InstanceState:
    id: str
    url: str
    tags: tuple[str, ...]
    healthy: bool | None
    drained: bool
    benched_until: datetime | None
    failure_streak: int
    running_prompts: int
    checked_at: datetime | None
    last_error: str | None
    benched: bool = False
    loaded_model_key: str | None = None


def list_pool(session: Session, configured: tuple[InstanceConfig, ...]) -> list[InstanceState]:
    rows = {row.url: (row, prompts) for row, prompts in instance_store.pool_with_prompts(session)}
    now = utc_now()
    states = []
    for config in configured:
        row, prompts = rows.get(config.url, (None, 0))
        states.append(
            InstanceState(
                id=instance_id(config.url),
                url=config.url,
                tags=config.tags,
                healthy=None if row is None or row.checked_at is None else row.healthy,
                drained=bool(row and row.drained),
                benched_until=None if row is None else row.benched_until,
                failure_streak=0 if row is None else row.failure_streak,
                running_prompts=prompts,
                checked_at=None if row is None else row.checked_at,
                last_error=None if row is None else row.last_error,
                benched=row is not None and _benched(row.benched_until, now),
                loaded_model_key=(row.model_key or None) if row is not None else None,
            )
        )
    return states


def _benched(until: datetime | None, now: datetime) -> bool:
    return until is not None and until > now


def find_configured(configured: tuple[InstanceConfig, ...], wanted: str) -> InstanceConfig | None:
    return next((c for c in configured if instance_id(c.url) == wanted), None)


def set_drained(
    session: Session, config: InstanceConfig, drained: bool, *, celery: Celery, slots: int
) -> None:
    """Drain (or undrain) an instance: the claim skips a drained one, so prompts already
    there finish and nothing new starts. Undraining sends a work hint per slot, so queued
    runs fill it now rather than as other runs finish."""
    instance_store.ensure_instance(session, config.url, config.tags)
    instance_store.set_drained(session, config.url, drained)
    if not drained:
        for _ in range(slots):
            send_after_commit(session, celery, WORK, [])
    session.commit()
    log.info("instance_drain url=%s drained=%s", config.url, drained)
