"""SQL for the instance pool: which instances exist, whether they answer, what they hold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import Instance


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


def healthy_instances(session: Session) -> list[Instance]:
    query = sa.select(Instance).where(Instance.healthy.is_(True)).order_by(Instance.url)
    return list(session.scalars(query))


def lock_healthy(session: Session, url: str) -> Instance | None:
    """Lock one instance's row until the transaction ends, waiting for a claimer that holds
    it, so one claimer at a time fills its slots; None if it is no longer healthy."""
    query = (
        sa.select(Instance)
        .where(Instance.url == url, Instance.healthy.is_(True))
        .with_for_update()
        .execution_options(populate_existing=True)
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
