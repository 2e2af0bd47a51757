"""The Redis broker flags every message it delivers again, which lets a first delivery of a
`work` message skip the look-up of a run it could only hold if delivered before
(`app.queue.marks_redeliveries`). Held to it here on the real Redis and kombu, for the ways
a message comes back: a lost worker's task rejected with requeue, and unacked messages given
back when a consumer's connection closes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import kombu
import pytest

from app.queue import marks_redeliveries
from tests.conftest import REDIS_URL, scratch_queue

_kombu: Any = kombu  # kombu ships no type hints
Connection = _kombu.Connection


@pytest.fixture
def queue() -> Iterator[Any]:
    with scratch_queue() as name:
        yield _kombu.Queue(name, _kombu.Exchange(name), routing_key=name)


def simple(connection: Any, queue: Any) -> Any:
    return connection.SimpleQueue(queue)


def test_the_test_broker_is_one_that_flags_redeliveries() -> None:
    assert marks_redeliveries(REDIS_URL)


def test_a_rejected_and_requeued_message_comes_back_flagged(queue: Any) -> None:
    with Connection(REDIS_URL) as connection, simple(connection, queue) as messages:
        messages.put({"task": "work"})
        first = messages.get(timeout=5)
        assert not first.delivery_info.get("redelivered")
        first.reject(requeue=True)

        again = messages.get(timeout=5)
        assert again.delivery_info.get("redelivered") is True
        again.ack()


def test_unacked_messages_of_a_closed_connection_come_back_flagged(queue: Any) -> None:
    with Connection(REDIS_URL) as connection, simple(connection, queue) as messages:
        messages.put({"task": "work"})
        assert not messages.get(timeout=5).delivery_info.get("redelivered")
    # Closed without an ack: the consumer's channel gives its unacked message back.
    with Connection(REDIS_URL) as connection, simple(connection, queue) as messages:
        again = messages.get(timeout=5)
        assert again.delivery_info.get("redelivered") is True
        again.ack()
