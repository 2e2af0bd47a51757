"""`ComfyClient`: the only code that speaks HTTP and WebSocket to a ComfyUI instance.

It turns every answer into a wire model (protocol.py) and every failure into a `ComfyError`
carrying a `RunError`. The instance URL comes only from the caller (settings); ids, file names
and folders from data travel as query parameters or JSON bodies, never spliced into a path,
except prompt ids, which are checked to be canonical UUIDs first. Graphs are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import urllib.request
import uuid
from asyncio import timeout as asyncio_timeout
from collections.abc import Awaitable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError
from yarl import URL

from app.comfy.channel import Channel, Socket
from app.comfy.download import Downloaded, Rewrite, save_body, view_params
from app.comfy.errors import ComfyError, RunError
from app.comfy.follow import UNREACHABLE_GIVE_UP_S, EventCallback, FrameCallback, PromptFollower
from app.comfy.protocol import (
    HistoryEntry,
    OutputFile,
    PromptAccepted,
    PromptRejected,
    QueueState,
    parse_history,
    parse_queue,
)
from app.comfy.rejections import rejection_error
from app.comfy.stall import PromptStalled
from app.comfy.websocket import open_websocket

log = logging.getLogger(__name__)
# A prompt's routine steps (submitted, finished, downloaded) log at DEBUG: the worker logs
# each run's claim and outcome at INFO already, and each line is CPU spent on every run.

ModelT = TypeVar("ModelT", bound=BaseModel)
WITHDRAW_SETTLE_S = 5.0  # how long a stalled prompt, once interrupted, may take to leave


def _require_uuid(prompt_id: str) -> str:
    # Newer ComfyUI accepts only lowercase hyphenated UUIDs as prompt ids, and an empty id in
    # POST /interrupt would stop whatever is running: refuse anything else before sending.
    try:
        canonical: str | None = str(uuid.UUID(prompt_id))
    except (ValueError, TypeError, AttributeError):
        canonical = None
    if canonical is None or canonical != prompt_id:
        raise ValueError(f"prompt_id must be a lowercase hyphenated UUID, got {prompt_id!r}")
    return prompt_id


def _transport(message: str, details: str | None = None) -> ComfyError:
    return ComfyError(RunError(kind="transport", message=message, details=details))


def _protocol(message: str, details: str | None = None) -> ComfyError:
    return ComfyError(RunError(kind="protocol", message=message, details=details))


@cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle for every client would cost a worker more than its run's
    # requests. Built once per process, after the fork.
    return ssl.create_default_context()


def _environment_proxy(url: URL) -> str | None:
    """The proxy HTTP_PROXY/HTTPS_PROXY name for `url` unless NO_PROXY exempts its host, for
    the client's requests and its WebSockets alike: read once per client, since aiohttp's own
    `trust_env` walks the environment again on every request, a third of the client's CPU."""
    proxy = urllib.request.getproxies().get(url.scheme or "")
    if proxy is None or not url.host or urllib.request.proxy_bypass(url.host):
        return None
    return proxy


@dataclass(frozen=True, slots=True)
class Answer:
    """A ComfyUI answer, read whole: every endpoint but `/view` answers a small JSON body."""

    method: str
    path: str  # as requested, relative to the base URL
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class ComfyClient:
    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self._base = URL(base_url.rstrip("/") + "/")
        # Per step, not in all: a video's `/view` may stream for longer than `timeout`.
        self._timeout = timeout
        self._http: aiohttp.ClientSession | None = None  # made on first use, in its loop
        self._proxy = _environment_proxy(self._base)
        scheme = "wss" if self._base.scheme == "https" else "ws"
        self._ws_base = self._base.with_scheme(scheme).join(URL("ws"))
        port = self._base.explicit_port
        host = self._base.host or ""
        self._label = f"{host}:{port}" if port else host  # no userinfo

    @property
    def base_url(self) -> str:
        return str(self._base).rstrip("/")

    @property
    def instance(self) -> str:
        """host:port, for logs (never the URL's userinfo)."""
        return self._label

    async def __aenter__(self) -> ComfyClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            step = aiohttp.ClientTimeout(total=None, connect=self._timeout, sock_read=self._timeout)
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=_tls_context()), timeout=step
            )
        return self._http

    def _url(self, path: str) -> URL:
        return self._base.join(URL(path))

    # --- prompts ---------------------------------------------------------------------------

    async def submit(
        self,
        graph: Mapping[str, Any],
        *,
        prompt_id: str,
        client_id: str,
        extra_pnginfo: Mapping[str, Any] | None = None,
    ) -> PromptAccepted:
        """Queue `graph` under our own `prompt_id`; a rejection raises kind="validation"."""
        body: dict[str, Any] = {
            "prompt": dict(graph),
            "client_id": client_id,
            "prompt_id": _require_uuid(prompt_id),
        }
        if extra_pnginfo is not None:
            body["extra_data"] = {"extra_pnginfo": dict(extra_pnginfo)}
        response = await self._send("POST", "prompt", json=body)
        if response.status == 400:
            rejected = self._model(PromptRejected, response)
            raise ComfyError(rejection_error(rejected, graph))
        accepted = self._model(PromptAccepted, self._ok(response))
        await self._check_accepted(accepted, prompt_id, graph)
        log.debug(
            "comfy.submitted instance=%s prompt_id=%s number=%s nodes=%d",
            self._label,
            prompt_id,
            accepted.number,
            len(graph),
        )
        return accepted

    async def _check_accepted(
        self, accepted: PromptAccepted, prompt_id: str, graph: Mapping[str, Any]
    ) -> None:
        if accepted.prompt_id != prompt_id:
            # ComfyUI before `prompt_id` support picks its own id; we could never follow it.
            await self._discard(accepted.prompt_id)
            raise _protocol(f"ComfyUI ignored our prompt_id and queued {accepted.prompt_id}")
        if accepted.node_errors:
            # Some outputs failed validation and ComfyUI queued the rest anyway (execution.py
            # validate_prompt): the run would silently miss outputs, so take it back and fail.
            await self._discard(prompt_id)
            rejected = PromptRejected(node_errors=accepted.node_errors)
            raise ComfyError(rejection_error(rejected, graph))

    async def _withdraw(self, prompt_id: str) -> None:
        """Take a stalled prompt off the instance and wait briefly until it has left the
        queue, so its slot is free and its history entry (interrupted) exists for whoever
        deletes it. An interrupt only lands where ComfyUI checks for it (between nodes, in
        sampler callbacks): a node blocked elsewhere stays listed as running."""
        await self.remove_from_queue([prompt_id])
        await self.interrupt(prompt_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WITHDRAW_SETTLE_S
        while (await self.queue()).holds(prompt_id) and loop.time() < deadline:
            await asyncio.sleep(0.1)

    async def _discard(self, prompt_id: str) -> None:
        """Best effort: drop a prompt we will not follow from the queue, or stop it."""
        try:
            await self.remove_from_queue([prompt_id])
            await self.interrupt(prompt_id)
        except ComfyError as ex:
            log.warning("comfy.discard_failed prompt_id=%s error=%s", prompt_id, ex.error.message)

    async def wait(
        self,
        prompt_id: str,
        *,
        client_id: str | None,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        on_event: EventCallback | None = None,
        unreachable_after: float = UNREACHABLE_GIVE_UP_S,
        stall_after: float | None = None,
        on_frame: FrameCallback | None = None,
    ) -> HistoryEntry:
        """The finished prompt's history entry (check `.error`); raises kind="timeout" etc.

        `client_id` must be the one the prompt was submitted with: ComfyUI sends per-prompt
        events only to that socket. None, when it is not known, follows by polling alone.
        `on_event` sees only messages about this prompt, parsed; `on_frame` the raw text
        frames that name it, unparsed, for a cheap tap. An instance unreachable for
        `unreachable_after` seconds fails as a transport error. A prompt that makes no
        progress for `stall_after` seconds (stall.py) is taken off the instance and fails as
        kind="timeout" with details "stalled".
        """
        follower = self._follower(
            prompt_id, client_id, poll_interval, on_event, unreachable_after, stall_after
        )
        follower.tap(on_frame)
        return await self._finish(prompt_id, timeout, follower.run())

    async def submit_and_wait(
        self,
        graph: Mapping[str, Any],
        *,
        prompt_id: str,
        client_id: str | None = None,
        channel: Channel | None = None,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        on_event: EventCallback | None = None,
        unreachable_after: float = UNREACHABLE_GIVE_UP_S,
        stall_after: float | None = None,
        on_frame: FrameCallback | None = None,
    ) -> HistoryEntry:
        """`submit`, then `wait`, with the socket listening before the prompt is queued, which
        spares the look-up `wait` must make after connecting. Either on a socket of its own,
        under a `client_id` that has no socket open yet, or on `channel`'s (of this
        instance), under its id, left open for the next prompt. A rejection raises
        kind="validation" as `submit` does."""
        if (client_id is None) == (channel is None):
            raise ValueError("submit_and_wait takes a client_id or a channel, not both")
        follower = self._follower(
            prompt_id, client_id, poll_interval, on_event, unreachable_after, stall_after, channel
        )
        follower.tap(on_frame)

        async def submit(as_client: str) -> None:
            await self.submit(graph, prompt_id=prompt_id, client_id=as_client)

        return await self._finish(prompt_id, timeout, follower.run(submit))

    def _follower(
        self,
        prompt_id: str,
        client_id: str | None,
        poll_interval: float,
        on_event: EventCallback | None,
        unreachable_after: float,
        stall_after: float | None,
        channel: Channel | None = None,
    ) -> PromptFollower:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if stall_after is not None and stall_after <= 0:
            raise ValueError("stall_after must be positive")
        return PromptFollower(
            self,
            _require_uuid(prompt_id),
            client_id=client_id,
            poll_interval=poll_interval,
            on_event=on_event,
            unreachable_after=unreachable_after,
            stall_after=stall_after,
            channel=channel,
        )

    async def _finish(
        self, prompt_id: str, timeout: float | None, following: Awaitable[HistoryEntry]
    ) -> HistoryEntry:
        timer = asyncio_timeout(timeout)
        try:
            async with timer:
                entry = await following
        except TimeoutError as ex:
            if not timer.expired():
                raise
            message = f"prompt {prompt_id} did not finish within {timeout}s"
            raise ComfyError(RunError(kind="timeout", message=message)) from ex
        except PromptStalled as stalled:
            await self._withdraw(prompt_id)
            message = (
                f"prompt made no progress for {stalled.stall_after:g} s on {self._label}; "
                "interrupted"
            )
            error = RunError(kind="timeout", message=message, details="stalled")
            raise ComfyError(error) from stalled
        log.debug(
            "comfy.finished instance=%s prompt_id=%s status=%s outputs=%d",
            self._label,
            prompt_id,
            entry.status_str,
            len(entry.outputs),
        )
        return entry

    def channel(self) -> Channel:
        """A new socket to this instance for prompts to share (channel.py), unconnected."""
        return Channel(self.open_socket)

    def open_socket(self, client_id: str) -> AbstractAsyncContextManager[Socket]:
        """The `/ws?clientId=` connection (websocket.py), on this client's HTTP session and
        through the same proxy; `wait` falls back to polling when it fails."""
        return open_websocket(self._session(), self.socket_url(client_id), self._proxy)

    def socket_url(self, client_id: str) -> URL:
        return self._ws_base.with_query(clientId=client_id)

    async def history(self, prompt_id: str) -> HistoryEntry | None:
        """The entry once the prompt has finished; None while queued, running, or unknown."""
        response = self._ok(await self._send("GET", f"history/{_require_uuid(prompt_id)}"))
        try:
            return parse_history(prompt_id, self._json(response))
        except (ValueError, ValidationError) as ex:
            raise _protocol("unexpected /history answer", str(ex)) from ex

    async def delete_history(self, prompt_ids: Sequence[str]) -> None:
        """Free ComfyUI's in-memory history (capped at 10,000 entries) once results are saved."""
        ids = [_require_uuid(prompt_id) for prompt_id in prompt_ids]
        self._ok(await self._send("POST", "history", json={"delete": ids}))

    async def queue(self) -> QueueState:
        response = self._ok(await self._send("GET", "queue"))
        try:
            return parse_queue(self._json(response))
        except ValueError as ex:
            raise _protocol("unexpected /queue answer", str(ex)) from ex

    async def remove_from_queue(self, prompt_ids: Sequence[str]) -> None:
        """Drop pending prompts; a running one is unaffected (use `interrupt`)."""
        ids = [_require_uuid(prompt_id) for prompt_id in prompt_ids]
        self._ok(await self._send("POST", "queue", json={"delete": ids}))

    async def interrupt(self, prompt_id: str) -> None:
        """Stop `prompt_id` if, and only if, it is the one running.

        A bare POST /interrupt stops whatever runs, someone else's prompt included, so the id
        is always sent. It races with completion: re-read the history afterwards.
        """
        body = {"prompt_id": _require_uuid(prompt_id)}
        self._ok(await self._send("POST", "interrupt", json=body))
        log.info("comfy.interrupt instance=%s prompt_id=%s", self._label, prompt_id)

    # --- files and instance ----------------------------------------------------------------

    async def download(
        self, output: OutputFile, destination: Path, rewrite: Rewrite | None = None
    ) -> Downloaded:
        """Stream one output file from `/view` into `destination`, hashing it on the way; a
        small one of `rewrite`'s mime type is written by it instead (download.py)."""
        params = view_params(output)
        try:
            view = self._session().get(self._url("view"), params=params, proxy=self._proxy)
            async with view as response:
                self._check_view(response.status, output)
                downloaded = await save_body(response, destination, output.filename, rewrite)
        except aiohttp.ClientError as ex:
            raise _transport(f"GET /view failed: {type(ex).__name__}", str(ex) or None) from ex
        log.debug(
            "comfy.downloaded instance=%s node=%s size=%d mime=%s",
            self._label,
            output.node_id,
            downloaded.size,
            downloaded.mime,
        )
        return downloaded

    def _check_view(self, status: int, output: OutputFile) -> None:
        where = f"{output.type}/{output.subfolder}/{output.filename}".replace("//", "/")
        if status == 404:
            # Listed in history but gone: ComfyUI empties temp/ at start, or someone deleted
            # it. Running the prompt again writes it again, hence a retryable kind.
            message = f"output file {where} not found on ComfyUI"
            raise ComfyError(RunError(kind="transport", message=message, node_id=output.node_id))
        if status >= 500:
            raise _transport(f"GET /view answered {status}")
        if status != 200:
            message = f"ComfyUI refused /view for {where}: HTTP {status}"
            raise ComfyError(RunError(kind="protocol", message=message, node_id=output.node_id))

    async def system_stats(self) -> dict[str, Any]:
        return self._object(self._ok(await self._send("GET", "system_stats")))

    async def object_info(self) -> dict[str, Any]:
        return self._object(self._ok(await self._send("GET", "object_info")))

    async def free(self) -> None:
        """Unload models and free memory (applied by ComfyUI between prompts)."""
        body = {"unload_models": True, "free_memory": True}
        self._ok(await self._send("POST", "free", json=body))

    # --- plumbing --------------------------------------------------------------------------

    async def _send(
        self, method: str, path: str, *, json: Mapping[str, Any] | None = None
    ) -> Answer:
        try:
            asked = self._session().request(method, self._url(path), json=json, proxy=self._proxy)
            async with asked as response:
                answer = Answer(method, path, response.status, await response.read())
        except aiohttp.ClientError as ex:
            log.info("comfy.unreachable instance=%s path=/%s error=%r", self._label, path, ex)
            raise _transport(
                f"{method} /{path} failed: {type(ex).__name__}", str(ex) or None
            ) from ex
        if answer.status >= 500:
            raise _transport(f"{method} /{path} answered {answer.status}", answer.text[:500])
        return answer

    @staticmethod
    def _ok(answer: Answer) -> Answer:
        if answer.status != 200:
            message = f"{answer.method} /{answer.path} answered {answer.status}"
            raise _protocol(message, answer.text[:500] or None)
        return answer

    @staticmethod
    def _json(answer: Answer) -> object:
        try:
            return json.loads(answer.body)
        except ValueError as ex:
            raise _protocol(f"/{answer.path} answered non-JSON", str(ex)) from ex

    @classmethod
    def _object(cls, answer: Answer) -> dict[str, Any]:
        body = cls._json(answer)
        if not isinstance(body, dict):
            raise _protocol(f"/{answer.path} answered JSON that is not an object")
        return body

    @classmethod
    def _model(cls, model: type[ModelT], answer: Answer) -> ModelT:
        try:
            return model.model_validate(cls._json(answer))
        except ValidationError as ex:
            raise _protocol(f"unexpected /{answer.path} answer", str(ex)) from ex
