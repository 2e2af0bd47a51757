"""Prompts sharing one channel's socket, with a scripted WebSocket and replayed answers; and
`wait` without a client id, which can only poll."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest

from app.comfy.channel import Channel, Socket
from app.comfy.client import ComfyClient
from app.comfy.errors import ComfyError
from tests.comfy.fakes import (
    FakeComfy,
    ScriptedSocket,
    body_of,
    capture,
    frames_of,
    serving,
)
from tests.comfy.test_wait import (
    FAST,
    GRAPH,
    OK_ID,
    OTHER_ID,
    RUNNING,
    UNFINISHED,
    accepting,
    comfy_with,
    for_other_prompt,
    history_reads,
)
from workers.comfy_session import ComfySession

pytestmark = pytest.mark.anyio

GREETING, *RUN = frames_of("ws_run_fresh")  # the first frame greets the new socket


def client_ids_submitted(comfy: FakeComfy) -> list[str]:
    return [body_of(request)["client_id"] for request in comfy.sent("POST", "/prompt")]


async def test_prompts_one_after_another_are_followed_on_one_socket_under_its_id() -> None:
    comfy = comfy_with(capture("get_history_ok"))
    comfy.on("GET", f"/history/{OTHER_ID}", httpx.Response(500))  # never needed
    # The second prompt's frames come after a stray one of the first, which it ignores.
    late = for_other_prompt(RUN)
    stray = RUN[4]
    socket = ScriptedSocket([GREETING, *RUN, stray, *late])
    accepting(comfy, socket)
    async with comfy.client(serving(socket)) as client:
        channel = client.channel()
        first = await client.submit_and_wait(
            GRAPH, prompt_id=OK_ID, channel=channel, poll_interval=60.0
        )
        second = await client.submit_and_wait(
            GRAPH, prompt_id=OTHER_ID, channel=channel, poll_interval=60.0
        )
        assert channel.connected
        await channel.close()
    assert first.status_str == second.status_str == "success"
    assert second.prompt_id == OTHER_ID
    assert client.connects == 1
    assert client.client_ids == [channel.client_id]
    assert client_ids_submitted(comfy) == [channel.client_id] * 2
    assert socket.received == len(socket.frames)  # one greeting: the second waited for none
    assert history_reads(comfy) == 0  # the socket saw both succeed
    assert not channel.worn
    assert not channel.connected


async def test_a_channel_whose_socket_drops_reconnects_under_its_id_then_is_replaced() -> None:
    comfy = comfy_with(*[UNFINISHED] * 3, capture("get_history_ok"))
    sockets = [ScriptedSocket([GREETING], drop_at_end=True), ScriptedSocket([GREETING])]
    accepting(comfy, sockets[0])

    @asynccontextmanager
    async def connect() -> AsyncIterator[Socket]:
        yield sockets.pop(0) if len(sockets) > 1 else sockets[0]

    async with comfy.client(connect) as client:
        session = ComfySession(make_client=lambda _url: client)
        channel = await session.channel(client.base_url)
        entry = await client.submit_and_wait(
            GRAPH, prompt_id=OK_ID, channel=channel, poll_interval=FAST, timeout=5.0
        )
        # The prompt's events go to the id it was submitted under: the socket came back
        # under it, and its end was read from the history.
        assert entry.status_str == "success"
        assert client.client_ids == [channel.client_id] * 2
        assert history_reads(comfy) >= 2
        # Its old socket's late close may unregister the new one: the next prompt gets a
        # channel under a new id, and the worn one is closed.
        assert channel.worn
        fresh = await session.channel(client.base_url)
        assert fresh is not channel
        assert fresh.client_id != channel.client_id
        assert not channel.connected
        assert await session.channel(client.base_url) is fresh


def test_hanging_up_closes_the_sessions_sockets() -> None:
    closed: list[str] = []

    class Recording(ComfyClient):
        def open_socket(self, client_id: str) -> AbstractAsyncContextManager[Socket]:
            @asynccontextmanager
            async def connect() -> AsyncIterator[Socket]:
                try:
                    yield ScriptedSocket([GREETING])
                finally:
                    closed.append(client_id)

            return connect()

    session = ComfySession(make_client=Recording)

    async def lease_two() -> list[Channel]:
        channels = [await session.channel(url) for url in ("http://gpu1:8188", "http://gpu2:8188")]
        for channel in channels:
            async with channel.lease():
                pass
        return channels

    channels = session.run(lease_two())
    assert closed == []  # open between prompts
    session.hang_up()
    assert sorted(closed) == sorted(channel.client_id for channel in channels)
    assert not any(channel.connected for channel in channels)
    session.close()


async def test_a_failure_while_leased_closes_the_socket_and_wears_the_channel() -> None:
    socket = ScriptedSocket([GREETING])
    channel = Channel(lambda _id: serving(socket)())
    with pytest.raises(RuntimeError):
        async with channel.lease():
            raise RuntimeError("the follow failed")
    assert channel.worn
    assert not channel.connected


async def test_submit_and_wait_takes_a_client_id_or_a_channel() -> None:
    comfy = comfy_with(capture("get_history_ok"))
    async with comfy.client(serving(ScriptedSocket([GREETING]))) as client:
        with pytest.raises(ValueError, match="client_id or a channel"):
            await client.submit_and_wait(GRAPH, prompt_id=OK_ID)
        with pytest.raises(ValueError, match="client_id or a channel"):
            await client.submit_and_wait(
                GRAPH, prompt_id=OK_ID, client_id="x", channel=client.channel()
            )
    assert comfy.sent("POST", "/prompt") == []


# --- a prompt whose client id is unknown: polled, never judged by silence -----------------


async def test_without_a_client_id_the_prompt_is_polled_and_silence_is_no_stall() -> None:
    # Running for longer than the stall time, with no socket to hear it: not stalled.
    comfy = comfy_with(*[UNFINISHED] * 30, capture("get_history_ok"), queue=RUNNING)
    async with comfy.client(serving(ScriptedSocket([GREETING]))) as client:
        entry = await client.wait(
            OK_ID, client_id=None, poll_interval=FAST, stall_after=FAST * 3, timeout=5.0
        )
    assert entry.status_str == "success"
    assert client.connects == 0
    assert history_reads(comfy) > 30
    assert comfy.sent("POST", "/interrupt") == []


async def test_without_a_client_id_a_lost_prompt_still_fails_fast() -> None:
    idle = capture("get_queue_idle")
    comfy = comfy_with(UNFINISHED, queue=idle)
    async with comfy.client() as client:
        with pytest.raises(ComfyError) as raised:
            await asyncio.wait_for(client.wait(OK_ID, client_id=None, poll_interval=FAST), 5)
    assert raised.value.error.details == "prompt_lost"


def test_a_channel_has_an_id_of_its_own() -> None:
    def never(_id: str) -> AbstractAsyncContextManager[Socket]:
        raise AssertionError("not connected until leased")

    opener: Callable[[str], AbstractAsyncContextManager[Socket]] = never
    assert Channel(opener).client_id != Channel(opener).client_id
