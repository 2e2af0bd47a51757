"""Telling a prompt that makes no progress from one that is slow or waiting its turn. No I/O:
the follower reports what it sees and asks whether the stall time has passed.

Progress is any frame about the prompt on its socket (`executing`, `progress`, `executed`,
`execution_cached`, ..., and binary previews, which ComfyUI sends only to the prompt's
client) or a change of its place in `/queue`. A pending prompt with another one running ahead
is never stalled: that prompt's events go to its own client, so whether it progresses is
unknowable here (if it is ours, its own follower judges it, and interrupting it moves the
queue). Only while the socket is up can silence be told from events missed, so the follower
restarts the clock on every connect and does not judge while polling without a socket.
"""

from __future__ import annotations

from app.comfy.protocol import QueueState

Place = tuple[str, ...]  # ("running",) or ("pending", *prompt ids ahead of it)


class PromptStalled(Exception):
    """The prompt made no progress for `stall_after` seconds while it was queued or running."""

    def __init__(self, prompt_id: str, stall_after: float) -> None:
        super().__init__(f"prompt {prompt_id} made no progress for {stall_after:g} s")
        self.prompt_id = prompt_id
        self.stall_after = stall_after


class StallWatch:
    def __init__(self, prompt_id: str, stall_after: float, now: float) -> None:
        if stall_after <= 0:
            raise ValueError("stall_after must be positive")
        self._prompt_id = prompt_id
        self.stall_after = stall_after
        self._progress_at = now
        self._place: Place | None = None

    def progressed(self, now: float) -> None:
        self._progress_at = now

    def saw_queue(self, queue: QueueState, now: float) -> None:
        place = _place_of(queue, self._prompt_id)
        behind_running = place[0] == "pending" and bool(queue.running)
        if place != self._place or behind_running:
            self._progress_at = now
        self._place = place

    def stalled(self, now: float) -> bool:
        return now - self._progress_at >= self.stall_after


def _place_of(queue: QueueState, prompt_id: str) -> Place:
    if prompt_id in queue.running:
        return ("running",)
    if prompt_id not in queue.pending:
        return ("absent",)
    ahead = queue.pending[: queue.pending.index(prompt_id)]
    return ("pending", *queue.running, *ahead)
