"""The statement that ends an instance's transport failure streak when a run succeeds
there. Here rather than in `app.stores.instances` (which imports `app.stores.runs`), so that
`runs` can run it inside a success's own statement (`runs.record_succeeded`)."""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa

from app.db.models import Instance

_instances = cast(sa.Table, Instance.__table__)

# Only a row with a streak matches, so the usual success neither changes nor locks it.
RESET_STREAK = (
    sa.update(_instances)
    .where(_instances.c.url == sa.bindparam("at_url"), _instances.c.failure_streak > 0)
    .values(failure_streak=0)
)
