"""SQL for the instance pool: which instances exist, whether they answer, what they hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import Instance, Run
from app.stores.runs import holding_prompt


def sync_instances(session: Session, configured: Sequence[tuple[str, Sequence[str]]]) -> None:
    """Make the table list exactly the configured instances (url, tags); new ones healthy."""
    urls = [url for url, _ in configured]
    session.execute(sa.delete(Instance).where(Instance.url.not_in(urls)))
    known = {i.url: i for i in session.scalars(sa.select(Instance))}
    for url, tags in configured:
        if url in known:
            known[url].tags = list(tags)
        else:
            session.add(Instance(url=url, tags=list(tags), healthy=True))
    session.flush()


@dataclass(frozen=True, slots=True)
class PoolEntry:
    url: str
    model_key: str  # "" when nothing is known to be loaded
    prompts: int  # queued or executing on it now


def healthy_pool(session: Session) -> list[PoolEntry]:
    """The healthy instances with the prompts each holds, in one query."""
    prompts = (
        sa.select(Run.instance, sa.func.count().label("prompts"))
        .where(*holding_prompt())
        .group_by(Run.instance)
        .subquery()
    )
    query = (
        sa.select(Instance.url, Instance.model_key, sa.func.coalesce(prompts.c.prompts, 0))
        .outerjoin(prompts, prompts.c.instance == Instance.url)
        .where(Instance.healthy.is_(True))
        .order_by(Instance.url)
    )
    return [PoolEntry(url, key or "", count) for url, key, count in session.execute(query)]


def lock_healthy(session: Session, url: str) -> Instance | None:
    """Lock one instance's row until the transaction ends, waiting for a claimer that holds
    it, so one claimer at a time fills its slots; None if it is no longer healthy."""
    query = (
        sa.select(Instance).where(Instance.url == url, Instance.healthy.is_(True)).with_for_update()
    )
    return session.scalar(query)


def all_instances(session: Session) -> list[Instance]:
    return list(session.scalars(sa.select(Instance).order_by(Instance.url)))


def set_health(
    session: Session, url: str, healthy: bool, checked_at: datetime, error: str | None = None
) -> None:
    values: dict[str, object] = {"healthy": healthy, "checked_at": checked_at, "last_error": error}
    if not healthy:
        # A restarted instance has lost its loaded models and cache.
        values["model_key"] = None
    session.execute(sa.update(Instance).where(Instance.url == url).values(**values))


def set_model_key(session: Session, url: str, model_key: str) -> None:
    session.execute(sa.update(Instance).where(Instance.url == url).values(model_key=model_key))
