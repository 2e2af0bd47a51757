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
from typing import cast

import sqlalchemy as sa

from app.db.models import Instance, Sweep
from app.domain.tags import covers, split_tags, tag_subsets


def instance_may_serve(instance: Instance, now: datetime) -> bool:
    """Healthy, not drained, not benched: new runs may be claimed for it."""
    benched = instance.benched_until is not None and instance.benched_until > now
    return instance.healthy and not instance.drained and not benched


_instances = cast(sa.Table, Instance.__table__)
_sweeps = cast(sa.Table, Sweep.__table__)


def instance_serving(
    now: datetime | sa.BindParameter[datetime],
) -> tuple[sa.ColumnElement[bool], ...]:
    """`instance_may_serve` as a WHERE clause on `instances`; `now` may be a bind parameter,
    for a statement built once."""
    return (
        _instances.c.healthy.is_(True),
        _instances.c.drained.is_(False),
        sa.or_(_instances.c.benched_until.is_(None), _instances.c.benched_until <= now),
    )


# A WHERE clause on `sweeps`, for a statement built once: the sweep requires only tags the
# instance has. Bind FITS to `fits_params(instance_tags)`.
FITS = "fitting_tags"
SWEEP_FITS = _sweeps.c.required_tags.in_(sa.bindparam(FITS, expanding=True))


def fits_params(instance_tags: Iterable[str]) -> dict[str, list[str]]:
    return {FITS: tag_subsets(instance_tags)}


def sweep_fits(sweep_required_tags: str, instance_tags: Iterable[str]) -> bool:
    """`SWEEP_FITS` for one sweep already read."""
    return covers(instance_tags, split_tags(sweep_required_tags))
