"""Which instances may take new runs now, and which sweeps' runs an instance may take: the two
filters every claim applies, kept apart from the claim query so its ordering can change
without touching them.

An instance may take new runs when it is healthy, not drained and not benched. It may take a
run only if its tags cover the sweep's `required_tags` (stored sorted and `+`-joined, see
`app.domain.tags`): an `IN` over the subsets of its own few tags, the same SQL on SQLite and
Postgres, and an equality the planner can use.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from app.db.models import Instance, Sweep
from app.domain.tags import covers, split_tags, tag_subsets


def instance_may_serve(instance: Instance, now: datetime) -> bool:
    """Healthy, not drained, not benched: new runs may be claimed for it."""
    benched = instance.benched_until is not None and instance.benched_until > now
    return instance.healthy and not instance.drained and not benched


def instance_serving(now: datetime) -> tuple[sa.ColumnElement[bool], ...]:
    """`instance_may_serve` as a WHERE clause on `instances`."""
    return (
        Instance.healthy.is_(True),
        Instance.drained.is_(False),
        sa.or_(Instance.benched_until.is_(None), Instance.benched_until <= now),
    )


def sweep_fits_instance(instance_tags: Iterable[str]) -> sa.ColumnElement[bool]:
    """A WHERE clause on `sweeps`: the sweep requires only tags the instance has."""
    return Sweep.required_tags.in_(tag_subsets(instance_tags))


def sweep_fits(sweep_required_tags: str, instance_tags: Iterable[str]) -> bool:
    """`sweep_fits_instance` for one sweep already read."""
    return covers(instance_tags, split_tags(sweep_required_tags))
