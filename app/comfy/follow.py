"""Following one prompt to its end: the WebSocket when it works, `/history` polling when not.

ComfyUI drops WebSocket events sent while a client is disconnected (server.py `send_json` to
an unknown sid is a no-op), and a reconnect with the same clientId can silently unregister the
new socket when the old one's close is processed late. So the socket is only a fast path: the
history entry is the final word, it is read right after every connect (the prompt may have
finished before), on `executing` with `node: null` (sent after the entry is written), and every
few poll intervals anyway. A prompt that is neither queued, running nor in history was lost
(ComfyUI restarted, or someone removed it) and fails fast as a transport error. Given a stall
time, a prompt that makes no progress that long (stall.py) ends the follow with `PromptStalled`.

A new prompt is best submitted by the follower itself, once its socket is registered (ComfyUI
greets a registered socket with `status`): then no event of the prompt can have been missed,
and the look-up after connecting, two requests per prompt, is not needed. Nor, when such a
socket sees the prompt succeed, is the history read at its end (witness.py).

The socket is the follower's own, opened under the client id it is given, or a `Channel`'s,
which stays open for the next prompt (channel.py). A prompt submitted under a client id
nobody knows any more (by a worker that died) is followed by polling alone: its events go to
that id, so no socket of ours hears them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Protocol

from app.comfy.channel import SOCKET_ERRORS, Channel, Socket, greeted
from app.comfy.errors import ComfyError, RunError
from app.comfy.protocol import (
    ExecutingMessage,
    HistoryEntry,
    QueueState,
    WsMessage,
    is_finish_signal,
    parse_ws_message,
    prompt_id_of,
)
from app.comfy.stall import PromptStalled, StallWatch
from app.comfy.witness import Witness

log = logging.getLogger(__name__)

RECHECK_POLLS = 5  # while the socket is up, read the history every this many poll intervals
MAX_RECONNECT_DELAY_S = 30.0  # longest stretch of polling between two reconnect attempts
UNREACHABLE_GIVE_UP_S = 120.0  # ComfyUI unreachable this long: fail as transport (retryable)

EventCallback = Callable[[WsMessage], None]
# Sees each text frame that names the prompt, unparsed: a caller that wants a few kinds of
# message (progress) checks for them cheaply rather than have every frame validated.
FrameCallback = Callable[[str], None]
# Submits the prompt under the client id it is given: the one the follower listens under.
Submit = Callable[[str], Awaitable[object]]
Connect = Callable[[], AbstractAsyncContextManager[Socket]]


class PromptSource(Protocol):
    """What following needs from the client (kept narrow so tests can fake the socket)."""

    async def history(self, prompt_id: str) -> HistoryEntry | None: ...

    async def queue(self) -> QueueState: ...

    def open_socket(self, client_id: str) -> AbstractAsyncContextManager[Socket]: ...


class PromptFollower:
    def __init__(
        self,
        source: PromptSource,
        prompt_id: str,
        *,
        client_id: str | None,
        poll_interval: float,
        on_event: EventCallback | None,
        unreachable_after: float = UNREACHABLE_GIVE_UP_S,
        stall_after: float | None = None,
        channel: Channel | None = None,
    ) -> None:
        if channel is not None and client_id not in (None, channel.client_id):
            raise ValueError("a prompt on a channel has the channel's client id")
        self._source = source
        self._unreachable_after = unreachable_after
        self._prompt_id = prompt_id
        self._client_id = channel.client_id if channel is not None else client_id
        # How to listen under that id: the channel's socket, which was greeted when it
        # connected; a socket of its own, to be greeted before a submission; or, without an
        # id, no socket at all (`run` polls).
        self._greets = channel is None
        self._open: Connect | None = None
        if channel is not None:
            self._open = channel.lease
        elif client_id is not None:
            self._open = partial(source.open_socket, client_id)
        self._poll_interval = poll_interval
        self._on_event = on_event
        self._socket_failures = 0
        self._unreachable_since: float | None = None
        self._submit: Callable[[], Awaitable[object]] | None = None
        self._stall_after = stall_after
        self._watch: StallWatch | None = None
        self._on_frame: FrameCallback | None = None

    def tap(self, on_frame: FrameCallback | None) -> None:
        """Show `on_frame` every text frame about the prompt (see FrameCallback)."""
        self._on_frame = on_frame

    async def run(self, submit: Submit | None = None) -> HistoryEntry:
        """Follow the prompt to its end. With `submit`, the prompt is not queued yet: it is
        submitted once the socket listens, or at once if no socket can be opened."""
        if submit is not None:
            if self._client_id is None:
                raise ValueError("a prompt submitted here needs a client id or a channel")
            self._submit = partial(submit, self._client_id)
        if self._stall_after is not None:
            self._watch = StallWatch(self._prompt_id, self._stall_after, self._now())
        if self._open is None:
            return await self._poll_to_the_end()
        while True:
            entry = await self._follow_socket(self._open)
            if entry is not None:
                return entry
            await self._submit_once()
            entry = await self._poll(self._reconnect_delay())
            if entry is not None:
                return entry

    async def _poll_to_the_end(self) -> HistoryEntry:
        """For a prompt whose client id is unknown (its submitter died): its events go to
        that id, so no socket would hear them, and silence would prove nothing."""
        while True:
            entry = await self._poll(MAX_RECONNECT_DELAY_S)
            if entry is not None:
                return entry

    async def _submit_once(self) -> None:
        submit, self._submit = self._submit, None
        if submit is not None:
            await submit()

    def _reconnect_delay(self) -> float:
        return min(self._poll_interval * 2.0**self._socket_failures, MAX_RECONNECT_DELAY_S)

    async def _follow_socket(self, open_socket: Connect) -> HistoryEntry | None:
        try:
            async with open_socket() as socket:
                self._socket_failures = 0
                self._progressed()  # events sent while no socket listened are lost
                log.debug("comfy.ws_connected prompt_id=%s", self._prompt_id)
                if self._submit is not None:
                    if self._greets:
                        await greeted(socket)
                    await self._submit_once()
                    return await self._listen(socket, Witness(self._prompt_id))
                entry = await self._check()  # it may have finished before we connected
                return entry if entry is not None else await self._listen(socket)
        except SOCKET_ERRORS as ex:
            self._socket_failures += 1
            log.info(
                "comfy.ws_unavailable prompt_id=%s failures=%d error=%r",
                self._prompt_id,
                self._socket_failures,
                ex,
            )
            return None

    async def _listen(self, socket: Socket, witness: Witness | None = None) -> HistoryEntry:
        """Until the prompt's history entry, or with a `witness` (the socket listened since
        before the submission) what it saw, if it saw the prompt succeed."""
        loop = asyncio.get_running_loop()
        recheck_s = self._poll_interval * RECHECK_POLLS
        while True:
            finished = await self._receive_until(socket, loop.time() + recheck_s, witness)
            seen = witness.entry() if finished and witness is not None else None
            if seen is not None:
                return seen
            entry = await self._check(judge=True)
            if entry is not None:
                return entry

    async def _receive_until(
        self, socket: Socket, deadline: float, witness: Witness | None
    ) -> bool:
        """Handle frames until one says our prompt finished (True) or `deadline` passes."""
        loop = asyncio.get_running_loop()
        try:
            # One timeout for all the frames until the deadline, not one per frame: a prompt
            # sends dozens (progress at every step), and each timeout is a timer to schedule.
            async with asyncio.timeout_at(deadline):
                while not self._handle(await socket.recv(), witness):
                    # recv() returns buffered frames without yielding to the loop, so under
                    # a flood of them the timer alone would never fire.
                    if loop.time() >= deadline:
                        return False
                return True
        except TimeoutError:
            return False  # recv() is cancellation-safe: no frame is lost

    def _handle(self, frame: str | bytes, witness: Witness | None) -> bool:
        """One frame; True when it says our prompt finished."""
        if self._on_event is None:
            if isinstance(frame, bytes):
                self._progressed()
            elif self._prompt_id in frame:
                self._progressed()
                self._show(frame)
            if witness is not None:
                witness.see_frame(frame)
            return is_finish_signal(frame, self._prompt_id)
        message = parse_ws_message(frame)
        if isinstance(frame, bytes):
            self._progressed()  # a preview: ComfyUI sends them only to the prompt's client
        if message is None or prompt_id_of(message) != self._prompt_id:
            return False
        self._progressed()
        if witness is not None:
            witness.see(message)
        self._emit(message)
        if isinstance(frame, str):
            self._show(frame)
        return isinstance(message, ExecutingMessage) and message.data.node is None

    def _show(self, frame: str) -> None:
        if self._on_frame is None:
            return
        try:
            self._on_frame(frame)
        except Exception:  # as `_emit`: a tap must never end the wait for the result
            log.exception("comfy.on_frame_failed prompt_id=%s", self._prompt_id)

    def _emit(self, message: WsMessage) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(message)
        except Exception:  # progress reporting must never end the wait for the result
            log.exception("comfy.on_event_failed prompt_id=%s", self._prompt_id)

    async def _poll(self, duration: float) -> HistoryEntry | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration
        while True:
            entry = await self._check()
            if entry is not None or loop.time() >= deadline:
                return entry
            await asyncio.sleep(self._poll_interval)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _progressed(self) -> None:
        if self._watch is not None:
            self._watch.progressed(self._now())

    async def _check(self, judge: bool = False) -> HistoryEntry | None:
        """The history entry once finished; None while queued, running or unreachable. With
        `judge` (the socket is listening), raises `PromptStalled` once the stall time passed
        without progress."""
        try:
            entry, queued = await self._look_up()
        except ComfyError as ex:
            if ex.error.kind != "transport":
                raise
            self._note_unreachable(ex)
            return None
        self._unreachable_since = None
        if entry is None and not queued:
            message = (
                f"prompt {self._prompt_id} is neither queued, running nor in history: "
                "ComfyUI restarted or the prompt was removed"
            )
            raise ComfyError(RunError(kind="transport", message=message, details="prompt_lost"))
        watch = self._watch
        if entry is None and watch is not None:
            if not judge:
                watch.progressed(self._now())  # polling sees no events: silence proves nothing
            elif watch.stalled(self._now()):
                raise PromptStalled(self._prompt_id, watch.stall_after)
        return entry

    async def _look_up(self) -> tuple[HistoryEntry | None, bool]:
        """(history entry, still queued or running)."""
        entry = await self._source.history(self._prompt_id)
        if entry is not None:
            return entry, False
        queue = await self._source.queue()
        if self._watch is not None:
            self._watch.saw_queue(queue, self._now())
        if queue.holds(self._prompt_id):
            return None, True
        # Queue, then history again: ComfyUI moves a prompt from running to history under one
        # lock (PromptQueue.task_done), so a prompt absent from both reads is gone.
        return await self._source.history(self._prompt_id), False

    def _note_unreachable(self, ex: ComfyError) -> None:
        now = asyncio.get_running_loop().time()
        if self._unreachable_since is None:
            self._unreachable_since = now
            log.warning(
                "comfy.unreachable prompt_id=%s error=%s", self._prompt_id, ex.error.message
            )
        if now - self._unreachable_since >= self._unreachable_after:
            raise ex
