"""The reconciler's pass deletes idempotency records past their day and keeps the others."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from uuid import uuid4

import pytest
import sqlalchemy as sa

from app.db.base import utc_now
from app.db.models import IdempotencyKey
from app.queue import make_celery
from app.services.idempotency import KEY_TTL
from app.settings import Settings
from app.stores import idempotency_keys, teams
from tests.conftest import REDIS_URL, scratch_database
from workers.reconciliation import reconcile_once
from workers.runtime import Runtime, build_runtime


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with scratch_database("idem") as url:
        settings = Settings(database_url=url, comfy_instances="", redis_url=REDIS_URL)
        rt = build_runtime(settings, make_celery(settings))
        yield rt
        rt.comfy.close()
        rt.sessions.kw["bind"].dispose()


def test_a_reconciler_pass_forgets_expired_keys(runtime: Runtime) -> None:
    now = utc_now()
    with runtime.sessions() as session:
        team = teams.get_or_create_team(session, "t")
        for key, age in (("old", KEY_TTL + timedelta(minutes=1)), ("new", timedelta(hours=1))):
            idempotency_keys.add_claim(session, uuid4(), team.id, key, "0" * 64, now - age)
        session.commit()

    reconcile_once(runtime)

    with runtime.sessions() as session:
        left = session.scalars(sa.select(IdempotencyKey.key)).all()
    assert left == ["new"]
