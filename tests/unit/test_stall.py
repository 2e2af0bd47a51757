"""`StallWatch`: what counts as a prompt's progress, on explicit clocks."""

from __future__ import annotations

import pytest

from app.comfy.protocol import QueueState
from app.comfy.stall import StallWatch

OURS = "p-ours"


def queue(running: list[str], pending: list[str]) -> QueueState:
    return QueueState(running=running, pending=pending)


def test_a_running_prompt_without_events_stalls_after_the_stall_time() -> None:
    watch = StallWatch(OURS, 300.0, now=0.0)
    watch.saw_queue(queue([OURS], []), now=1.0)
    watch.saw_queue(queue([OURS], ["p-later"]), now=200.0)  # others queued behind: no progress
    assert not watch.stalled(now=300.9)
    assert watch.stalled(now=301.0)


def test_every_event_restarts_the_clock() -> None:
    watch = StallWatch(OURS, 300.0, now=0.0)
    watch.saw_queue(queue([OURS], []), now=0.0)
    watch.progressed(now=250.0)
    assert not watch.stalled(now=549.0)
    assert watch.stalled(now=550.0)


def test_a_prompt_pending_behind_a_running_one_never_stalls() -> None:
    watch = StallWatch(OURS, 300.0, now=0.0)
    for minute in range(1, 30):
        watch.saw_queue(queue(["p-head"], [OURS]), now=minute * 60.0)
    assert not watch.stalled(now=29 * 60.0 + 299.0)


def test_a_pending_prompt_in_a_queue_that_does_not_move_stalls() -> None:
    watch = StallWatch(OURS, 300.0, now=0.0)
    watch.saw_queue(queue([], ["p-ahead", OURS]), now=10.0)
    watch.saw_queue(queue([], ["p-ahead", OURS, "p-later"]), now=200.0)
    assert watch.stalled(now=310.0)


def test_queue_movement_restarts_the_clock() -> None:
    watch = StallWatch(OURS, 300.0, now=0.0)
    watch.saw_queue(queue([], ["p-ahead", OURS]), now=0.0)
    watch.saw_queue(queue([], [OURS]), now=250.0)  # the one ahead left
    assert not watch.stalled(now=549.0)
    watch.saw_queue(queue([OURS], []), now=500.0)  # ours started
    assert not watch.stalled(now=799.0)
    assert watch.stalled(now=800.0)


def test_the_stall_time_must_be_positive() -> None:
    with pytest.raises(ValueError, match="stall_after"):
        StallWatch(OURS, 0.0, now=0.0)
