"""A worker's warm shutdown, as its pool processes see it.

Celery's warm shutdown (SIGTERM) waits for every task in hand to end, and a task following a
prompt ends when the prompt does: an hour, or never, before the orchestrator's kill turns it
into a dead worker whose runs wait out their lease. So the main process tells each pool
process (STOP_SIGNAL) and a task following a prompt hands its run back instead, leaving the
prompt running on its instance for another worker to follow.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType

# Unused by Celery and billiard in pool processes (SIGUSR1 is the soft time limit; SIGUSR2 is
# taken only in the main process, and only when CELERY_RDBSIG is set).
STOP_SIGNAL = signal.SIGUSR2
# How long a prompt about to finish may still hold the shutdown before its run is handed back;
# short, so the whole warm shutdown fits well inside a container's stop grace period.
SHUTDOWN_GRACE_S = 3.0


class StopNotice:
    """Set once in a process, from a signal handler; wakes every loop waiting on it."""

    def __init__(self) -> None:
        self._requested = False
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    @property
    def requested(self) -> bool:
        return self._requested

    def request(self) -> None:
        self._requested = True
        for loop, event in list(self._waiting):
            if not loop.is_closed():
                # Safe from a signal handler: it only writes to the loop's wake-up pipe.
                loop.call_soon_threadsafe(event.set)

    @contextmanager
    def watch(self) -> Iterator[asyncio.Event]:
        """An event of the running loop, set when (or if already) a stop is requested."""
        event = asyncio.Event()
        if self._requested:
            event.set()
        entry = (asyncio.get_running_loop(), event)
        self._waiting.append(entry)
        try:
            yield event
        finally:
            self._waiting.remove(entry)


notice = StopNotice()


def listen() -> None:
    """In a pool process: take STOP_SIGNAL as the notice (installed after the fork)."""
    signal.signal(STOP_SIGNAL, _on_signal)


def _on_signal(_: int, __: FrameType | None) -> None:
    notice.request()


def tell(pids: Iterable[int]) -> None:
    """In the main process: pass the notice on to each pool process."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, STOP_SIGNAL)
