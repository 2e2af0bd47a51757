"""Recording a followed prompt's progress (`run.progress`, sampled) and noting its cached
nodes (`run.cached`) from the raw WebSocket frames the follower shows it.

Cheap per frame, as a prompt sends one `progress` frame per sampler step: a frame is looked
at as text first and parsed only when it will be used. Progress is recorded at most once per
`progress_interval_s`, the first time one interval after the first frame (a prompt that
samples for less reports none: its `run.succeeded` follows at once), and never twice with
the same value, each in a short transaction of its own (`app.stores.progress`), run in place
on the follower's loop (a thread hop per sample would cost more CPU than the write). Cached
nodes are only noted: the run's outcome records them in its own transaction
(`workers.execution.record`), which spares every run a transaction.
"""

from __future__ import annotations

import logging
import time

from app.comfy.protocol import ExecutionCachedMessage, ProgressMessage, parse_ws_message
from app.stores import progress
from app.stores.runs import Claim
from workers.runtime import Runtime

log = logging.getLogger(__name__)


class ProgressTap:
    """A follower's frame tap (`app.comfy.follow.FrameCallback`) for one attempt of a run."""

    def __init__(self, rt: Runtime, claim: Claim) -> None:
        self._rt = rt
        self._claim = claim
        self._interval = rt.settings.progress_interval_s
        self._next_at: float | None = None  # None until the first progress frame
        self._last: tuple[str, int] | None = None
        self.cached_nodes: tuple[str, ...] = ()
        self._cached_seen = False

    def __call__(self, frame: str) -> None:
        if '"progress"' in frame:
            now = time.monotonic()
            if self._next_at is None:
                self._next_at = now + self._interval
            elif now >= self._next_at:
                self._progress(frame, now)
        elif not self._cached_seen and '"execution_cached"' in frame:
            self._cached_seen = True  # one per prompt
            message = parse_ws_message(frame)
            if isinstance(message, ExecutionCachedMessage):
                self.cached_nodes = tuple(message.data.nodes)

    def _progress(self, frame: str, now: float) -> None:
        message = parse_ws_message(frame)
        if not isinstance(message, ProgressMessage):
            return
        data = message.data
        sample = (data.node or "", int(data.value))
        if sample == self._last:
            return
        self._last = sample
        self._next_at = now + self._interval
        claim = self._claim
        with self._rt.sessions() as session:
            progress.record_progress(
                session,
                claim.run_id,
                claim.attempt,
                claim.sweep_id,
                claim.index,
                node=sample[0],
                value=sample[1],
                max_=int(data.max),
            )
            session.commit()
