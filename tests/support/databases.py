"""A runtime on each backend the service runs on: Postgres (production) and SQLite (the
embedded default of `make run`), for tests parametrized over both."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from app.db.migrate import upgrade_to_head
from tests.conftest import scratch_database
from workers.runtime import Runtime

BACKENDS = ["postgresql", "sqlite"]


@contextmanager
def runtime_on(
    backend: str, tmp_path: Path, name: str, build: Callable[[str], Runtime]
) -> Iterator[Runtime]:
    """`build(url)` on a fresh SQLite file under `tmp_path`, or on a scratch Postgres
    database called after `name`, disposed of afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
        upgrade_to_head(url)
        yield build(url)
        return
    with scratch_database(name) as url:
        rt = build(url)
        yield rt
        rt.sessions.kw["bind"].dispose()
