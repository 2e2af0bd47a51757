"""Choosing which instance a claim (`workers.dispatching.take_work`) tries first, for tests
that play claims in a given order: in production the emptiest, ties at random."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy.orm import Session

from app.stores import instances


def trying_first(monkeypatch: pytest.MonkeyPatch, urls: Iterator[str]) -> None:
    """Each claim from now on tries the next of `urls` first, locked as `lock_emptiest`
    locks its choice; the rest of the pool as usual."""

    def lock_first(session: Session, now: datetime, slots: int) -> instances.Chosen | None:
        url = next(urls)
        locked = instances.lock_healthy(session, url, now)
        if locked is None:
            return None
        return instances.Chosen(url, locked, len(instances.healthy_pool(session, now)))

    monkeypatch.setattr(instances, "lock_emptiest", lock_first)
