"""SQL for the instance pool: which instances exist, whether they answer, what they hold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.base import UtcDateTime
from app.db.models import Instance, Run
from app.stores.eligibility import instance_serving
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
    tags: tuple[str, ...] = ()


_instances = cast(sa.Table, Instance.__table__)
_runs = cast(sa.Table, Run.__table__)


def _prompts_by_instance() -> sa.Subquery:
    return (
        sa.select(_runs.c.instance, sa.func.count().label("prompts"))
        .where(*holding_prompt())
        .group_by(_runs.c.instance)
        .subquery()
    )


# Every claim reads the pool and locks one instance: Core statements built once, with `now`
# bound, so neither is rebuilt nor loads an ORM object per claim.
_NOW = sa.bindparam("now", type_=UtcDateTime())
_PROMPTS = _prompts_by_instance()
_PROMPTS_HELD = sa.func.coalesce(_PROMPTS.c.prompts, 0)
_POOL = (
    sa.select(_instances.c.url, _instances.c.model_key, _PROMPTS_HELD, _instances.c.tags)
    .outerjoin(_PROMPTS, _PROMPTS.c.instance == _instances.c.url)
    .where(*instance_serving(_NOW))
    .order_by(_instances.c.url)
)


def healthy_pool(session: Session, now: datetime) -> list[PoolEntry]:
    """The instances that may take new runs now (healthy, not drained, not benched) with the
    prompts each holds, in one query."""
    return [
        PoolEntry(url, model_key or "", prompts, tuple(tags or ()))
        for url, model_key, prompts, tags in session.execute(_POOL, {"now": now})
    ]


@dataclass(frozen=True, slots=True)
class LockedInstance:
    """What a claim reads of the instance it locked: read under the lock, as another
    claimer may have just changed its model."""

    model_key: str  # "" when nothing is known to be loaded
    tags: tuple[str, ...]

    @classmethod
    def of_row(cls, model_key: str | None, tags: Sequence[str] | None) -> LockedInstance:
        return cls(model_key or "", tuple(tags or ()))


_LOCK = (
    sa.select(_instances.c.model_key, _instances.c.tags)
    .where(_instances.c.url == sa.bindparam("url"), *instance_serving(_NOW))
    .with_for_update()
)


def lock_healthy(session: Session, url: str, now: datetime) -> LockedInstance | None:
    """Lock one instance's row until the transaction ends, waiting for a claimer that holds
    it, so one claimer at a time fills its slots; None if it may no longer take new runs
    (unhealthy, drained or benched meanwhile)."""
    row = session.execute(_LOCK, {"url": url, "now": now}).first()
    return None if row is None else LockedInstance.of_row(row.model_key, row.tags)


@dataclass(frozen=True, slots=True)
class Chosen:
    """The instance a claim tries, locked (`lock_emptiest`, `lock_serving`), and how many
    instances may take new runs now."""

    url: str
    locked: LockedInstance
    serving: int

    @classmethod
    def of_row(cls, row: sa.Row[str, str | None, list[str] | None, int]) -> Chosen:
        """From a row of (url, model_key, tags, serving)."""
        url, model_key, tags, serving = row
        return cls(url, LockedInstance.of_row(model_key, tags), int(serving))


def _serving_count() -> sa.ScalarSelect[int]:
    """How many instances may take new runs now, as a subquery of a locking statement."""
    return (
        sa.select(sa.func.count())
        .select_from(_instances)
        .where(*instance_serving(_NOW))
        .correlate(None)
        .scalar_subquery()
    )


# `_LOCK` with the row's columns as `_LOCK_EMPTIEST` reads them, for `Chosen.of_row`.
_LOCK_SERVING = _LOCK.with_only_columns(
    _instances.c.url, _instances.c.model_key, _instances.c.tags, _serving_count()
)


def lock_serving(session: Session, url: str, now: datetime) -> Chosen | None:
    """`lock_healthy`, with how many instances may take runs now read in the same round
    trip, as `lock_emptiest` gives them."""
    row = session.execute(_LOCK_SERVING, {"url": url, "now": now}).first()
    return None if row is None else Chosen.of_row(row)


def _lock_emptiest() -> sa.Select[str, str | None, list[str] | None, int]:
    """`healthy_pool`'s choice of instance and `lock_healthy`'s lock in one statement: the
    instance holding the fewest prompts and fewer than `slots`, ties in random order (as
    `workers.dispatching` orders the pool), locked once chosen. The subqueries are not
    correlated with the row locked: they read the pool as a whole."""
    emptiest = (
        _POOL.with_only_columns(_instances.c.url)
        .where(sa.bindparam("slots") > _PROMPTS_HELD)
        .order_by(None)
        .order_by(_PROMPTS_HELD, sa.func.random())
        .limit(1)
        .correlate(None)
        .scalar_subquery()
    )
    return (
        sa.select(_instances.c.url, _instances.c.model_key, _instances.c.tags, _serving_count())
        .where(_instances.c.url == emptiest, *instance_serving(_NOW))
        .with_for_update(of=_instances)
    )


_LOCK_EMPTIEST = _lock_emptiest()


def lock_emptiest(session: Session, now: datetime, slots: int) -> Chosen | None:
    """Choose the instance a claim tries first and lock it, in one round trip; None when
    none has a free slot as far as this statement saw, or the one chosen could no longer
    take runs once its lock was granted. The lock waits, as `lock_healthy`'s does."""
    row = session.execute(_LOCK_EMPTIEST, {"now": now, "slots": slots}).first()
    return None if row is None else Chosen.of_row(row)


def pool_with_prompts(session: Session) -> list[tuple[Instance, int]]:
    """Every instance row with the prompts it holds now, for the operators' view."""
    prompts = _prompts_by_instance()
    query = (
        sa.select(Instance, sa.func.coalesce(prompts.c.prompts, 0))
        .outerjoin(prompts, prompts.c.instance == Instance.url)
        .order_by(Instance.url)
    )
    return [(instance, count) for instance, count in session.execute(query)]


def ensure_instance(session: Session, url: str, tags: Sequence[str]) -> None:
    """Add the configured instance's row if the reconciler has not yet; a row the reconciler
    adds at the same moment wins, so this never fails on the primary key."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(Instance)
        .values(url=url, tags=list(tags), healthy=True)
        .on_conflict_do_nothing(index_elements=[Instance.url])
    )


def set_drained(session: Session, url: str, drained: bool) -> bool:
    result = session.execute(sa.update(Instance).where(Instance.url == url).values(drained=drained))
    return _rows(result) == 1


def record_transport_failure(
    session: Session, url: str, now: datetime, bench_after: int, bench_for: timedelta
) -> datetime | None:
    """One more run failed there with a transport error; benches it for `bench_for` once
    `bench_after` did in a row, and returns until when (None if not benched). The streak is
    kept through the bench, so the first failure after it benches the instance again."""
    streak = session.scalar(
        sa.update(Instance)
        .where(Instance.url == url)
        .values(failure_streak=Instance.failure_streak + 1)
        .returning(Instance.failure_streak)
    )
    if streak is None or streak < bench_after:
        return None
    until = now + bench_for
    session.execute(sa.update(Instance).where(Instance.url == url).values(benched_until=until))
    return until


def _rows(result: sa.Result[Any]) -> int:
    return cast(sa.CursorResult[Any], result).rowcount


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


_SET_MODEL_KEY = (
    sa.update(_instances)
    .where(_instances.c.url == sa.bindparam("at_url"))
    .values(model_key=sa.bindparam("to_model"))
)


def set_model_key(session: Session, url: str, model_key: str) -> None:
    session.execute(_SET_MODEL_KEY, {"at_url": url, "to_model": model_key})
