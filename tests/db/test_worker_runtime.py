"""A worker process's runtime pays its one-time costs in `warm_up`, before its first task."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.queue import make_celery
from app.settings import Settings
from tests.conftest import REDIS_URL, scratch_database
from workers.runtime import Runtime, build_runtime

INSTANCES = ["http://gpu1:8188", "http://gpu2:8188#sdxl"]


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    with scratch_database("runtime") as url:
        settings = Settings(
            database_url=url, comfy_instances=",".join(INSTANCES), redis_url=REDIS_URL
        )
        rt = build_runtime(settings, make_celery(settings))
        yield rt
        rt.comfy.close()
        rt.sessions.kw["bind"].dispose()


def test_warm_up_opens_a_database_connection_and_a_client_per_instance(
    runtime: Runtime,
) -> None:
    pool = runtime.sessions.kw["bind"].pool
    assert pool.checkedin() == 0
    assert not runtime.comfy.clients

    runtime.warm_up()

    assert pool.checkedin() == 1  # kept in the pool for the first task
    assert set(runtime.comfy.clients) == {"http://gpu1:8188", "http://gpu2:8188"}
