"""`wait` with a scripted WebSocket and replayed `/history` and `/queue` answers."""

from __future__ import annotations

import json

import httpx
import pytest

from app.comfy.errors import ComfyError
from app.comfy.protocol import ExecutingMessage, StatusMessage, WsMessage, parse_history
from tests.comfy.fakes import (
    FakeComfy,
    FloodingSocket,
    ScriptedSocket,
    capture,
    captured_response,
    frames_of,
    serving,
)

pytestmark = pytest.mark.anyio

OK_ID = "a5278fe9-7f05-4b93-aedf-b26a17628f5e"  # the prompt of ws_run_fresh and get_history_ok
OTHER_ID = "7f48e284-a5f5-4118-baae-6b478249015f"
CLIENT_ID = "3ac2c95c-b33d-4fbd-a7e2-e388828bad65"
UNFINISHED = capture("get_history_unknown_id")
RUNNING = {"queue_running": [[0, OK_ID, {}, {}, ["3"]]], "queue_pending": []}
IDLE = capture("get_queue_idle")
FAST = 0.01  # poll interval for tests


def comfy_with(*history: object, queue: object = RUNNING) -> FakeComfy:
    comfy = FakeComfy()
    comfy.answer("GET", f"/history/{OK_ID}", *history)
    comfy.answer("GET", "/queue", queue)
    return comfy


def history_reads(comfy: FakeComfy) -> int:
    return len(comfy.sent("GET", f"/history/{OK_ID}"))


def for_other_prompt(frames: list[str]) -> list[str]:
    return [frame.replace(OK_ID, OTHER_ID) for frame in frames]


async def test_the_socket_follows_the_prompt_to_executing_null() -> None:
    comfy = comfy_with(UNFINISHED, capture("get_history_ok"))
    socket = ScriptedSocket(frames_of("ws_run_fresh"))
    seen: list[WsMessage] = []
    async with comfy.client(serving(socket)) as client:
        entry = await client.wait(
            OK_ID, client_id=CLIENT_ID, poll_interval=60.0, on_event=seen.append
        )
    assert entry.status_str == "success"
    assert [f.filename for f in entry.outputs] == ["sweep_probe_00001_.png"]
    assert socket.received == len(socket.frames)
    # on_event sees this prompt's messages only, in order, ending with the finish signal.
    statuses = sum(1 for m in capture("ws_run_fresh") if m["type"] == "status")
    assert len(seen) == len(socket.frames) - statuses
    assert not any(isinstance(m, StatusMessage) for m in seen)
    assert isinstance(seen[-1], ExecutingMessage)
    assert seen[-1].data.node is None
    assert history_reads(comfy) == 2  # once after connecting, once at the end


async def test_other_prompts_events_and_binary_frames_are_ignored() -> None:
    comfy = comfy_with(UNFINISHED, capture("get_history_ok"))
    frames: list[str | bytes] = [
        *for_other_prompt(frames_of("ws_run_all_cached")),  # ends with *its* executing null
        b"\x00\x00\x00\x01\x00\x00\x00\x02\x89PNG",
        '{"type": "feature_flags", "data": {}}',
        *frames_of("ws_run_fresh"),
    ]
    socket = ScriptedSocket(frames)
    seen: list[WsMessage] = []
    async with comfy.client(serving(socket)) as client:
        await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=60.0, on_event=seen.append)
    assert socket.received == len(frames)
    assert history_reads(comfy) == 2
    assert all(OTHER_ID not in m.model_dump_json() for m in seen)


async def test_a_prompt_finished_before_the_wait_returns_at_once() -> None:
    comfy = comfy_with(capture("get_history_ok"))
    socket = ScriptedSocket([])
    async with comfy.client(serving(socket)) as client:
        entry = await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=60.0)
    assert entry.error is None
    assert history_reads(comfy) == 1
    assert comfy.sent("GET", "/queue") == []


async def test_without_a_socket_the_history_is_polled() -> None:
    comfy = comfy_with(UNFINISHED, UNFINISHED, UNFINISHED, capture("get_history_ok"))
    async with comfy.client() as client:  # its WebSocket connect is refused
        entry = await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=FAST)
    assert entry.status_str == "success"
    assert history_reads(comfy) >= 4


async def test_the_client_reconnects_after_polling_for_a_while() -> None:
    comfy = comfy_with(UNFINISHED)
    async with comfy.client() as client:
        # Reconnects back off (0.02 s, 0.04 s, ...): about six fit in 2 s, and three in 0.5 s
        # only on an idle machine, so the margin is left for a loaded one.
        with pytest.raises(ComfyError):
            await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=FAST, timeout=2.0)
        assert client.connects >= 3


async def test_a_dropped_socket_falls_back_to_the_history() -> None:
    frames = frames_of("ws_run_fresh")[:6]  # the connection drops mid-prompt
    comfy = comfy_with(UNFINISHED, UNFINISHED, capture("get_history_ok"))
    socket = ScriptedSocket(frames, drop_at_end=True)
    async with comfy.client(serving(socket)) as client:
        entry = await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=FAST)
    assert entry.status_str == "success"


async def test_a_silent_socket_is_backed_by_periodic_history_reads() -> None:
    # A reconnect with the same clientId can leave the new socket unregistered (ComfyUI pops
    # the sid when the old socket closes), and then it hears nothing at all.
    comfy = comfy_with(UNFINISHED, UNFINISHED, capture("get_history_ok"))
    async with comfy.client(serving(ScriptedSocket([]))) as client:
        entry = await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=FAST)
    assert entry.status_str == "success"


async def test_a_busy_socket_does_not_postpone_the_periodic_read() -> None:
    status = json.dumps(capture("ws_00_hello_status"))
    comfy = comfy_with(UNFINISHED, capture("get_history_ok"))
    # A flood that never ends: without the periodic read the wait would never return, as
    # nothing else gets the loop to run (not even the wait's own timeout).
    socket = FloodingSocket([status])
    async with comfy.client(serving(socket)) as client:
        entry = await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=FAST, timeout=5.0)
    assert entry.status_str == "success"
    assert socket.received > 1


async def test_an_interrupted_prompt_returns_its_entry_with_the_error() -> None:
    interrupted_id = "a55e5726-d8cb-4a8b-80e5-ee21c87ea7fa"
    comfy = FakeComfy()
    comfy.answer(
        "GET", f"/history/{interrupted_id}", UNFINISHED, capture("get_history_interrupted")
    )
    comfy.answer("GET", "/queue", capture("get_queue_busy"))
    socket = ScriptedSocket(frames_of("ws_interrupted"))
    async with comfy.client(serving(socket)) as client:
        entry = await client.wait(interrupted_id, client_id=CLIENT_ID, poll_interval=60.0)
    assert entry.error is not None
    assert entry.error.kind == "interrupted"


async def test_a_prompt_neither_queued_nor_in_history_was_lost() -> None:
    comfy = comfy_with(UNFINISHED, queue=IDLE)
    async with comfy.client(serving(ScriptedSocket([]))) as client:
        with pytest.raises(ComfyError) as raised:
            await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=FAST)
    assert raised.value.error.kind == "transport"
    assert raised.value.error.details == "prompt_lost"
    # The second history read closes the race with completion between the first two reads.
    assert history_reads(comfy) == 2


async def test_a_prompt_that_finished_between_the_reads_is_not_lost() -> None:
    comfy = comfy_with(UNFINISHED, capture("get_history_ok"), queue=IDLE)
    async with comfy.client(serving(ScriptedSocket([]))) as client:
        entry = await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=FAST)
    assert entry.status_str == "success"


async def test_a_wait_that_runs_out_of_time_is_a_timeout() -> None:
    comfy = comfy_with(UNFINISHED)
    async with comfy.client(serving(ScriptedSocket([]))) as client:
        with pytest.raises(ComfyError) as raised:
            await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=FAST, timeout=0.2)
    assert raised.value.error.kind == "timeout"
    assert "0.2" in raised.value.error.message


async def test_a_brief_outage_is_ridden_out() -> None:
    answers = iter([None, None, capture("get_history_ok")])

    def flaky(request: httpx.Request) -> httpx.Response:
        body = next(answers)
        if body is None:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json=body)

    comfy = comfy_with()
    comfy.on("GET", f"/history/{OK_ID}", flaky)
    async with comfy.client() as client:
        entry = await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=FAST)
    assert entry.status_str == "success"


async def test_a_long_outage_gives_up_as_a_transport_error() -> None:
    comfy = comfy_with()
    comfy.on("GET", f"/history/{OK_ID}", httpx.Response(503, text="starting"))
    async with comfy.client() as client:
        with pytest.raises(ComfyError) as raised:
            await client.wait(
                OK_ID, client_id=CLIENT_ID, poll_interval=FAST, timeout=5.0, unreachable_after=0.1
            )
    assert raised.value.error.kind == "transport"
    assert "503" in raised.value.error.message


async def test_a_failing_event_callback_does_not_end_the_wait() -> None:
    def explode(message: WsMessage) -> None:
        raise RuntimeError("progress store down")

    comfy = comfy_with(UNFINISHED, capture("get_history_ok"))
    socket = ScriptedSocket(frames_of("ws_run_fresh"))
    async with comfy.client(serving(socket)) as client:
        entry = await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=60.0, on_event=explode)
    assert entry.status_str == "success"


async def test_a_protocol_error_while_waiting_is_raised() -> None:
    comfy = comfy_with({OK_ID: {"status": "garbled"}})
    async with comfy.client(serving(ScriptedSocket([]))) as client:
        with pytest.raises(ComfyError) as raised:
            await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=FAST)
    assert raised.value.error.kind == "protocol"


# --- submit_and_wait: the socket listens before the prompt is queued ----------------------

GRAPH = capture("post_prompt_ok")["request"]["prompt"]


def accepting(comfy: FakeComfy, socket: ScriptedSocket | None = None) -> list[int]:
    """Accept POST /prompt; returns, per submission, how many frames the socket had given."""
    frames_at_submission: list[int] = []

    def accept(request: httpx.Request) -> httpx.Response:
        frames_at_submission.append(socket.received if socket else -1)
        prompt_id = json.loads(request.content)["prompt_id"]
        return httpx.Response(200, json={"prompt_id": prompt_id, "number": 0, "node_errors": {}})

    comfy.on("POST", "/prompt", accept)
    return frames_at_submission


async def test_a_new_prompt_is_submitted_once_its_socket_is_greeted_then_read_once() -> None:
    comfy = comfy_with(capture("get_history_ok"))
    socket = ScriptedSocket(frames_of("ws_run_fresh"))
    submissions = accepting(comfy, socket)
    async with comfy.client(serving(socket)) as client:
        entry = await client.submit_and_wait(
            GRAPH, prompt_id=OK_ID, client_id=CLIENT_ID, poll_interval=60.0
        )
    assert entry.status_str == "success"
    assert submissions == [1]  # after the greeting `status`, before any other frame
    # The socket saw every event of the prompt, its success and outputs included: neither a
    # look-up first nor the history entry at the end is read.
    assert history_reads(comfy) == 0
    assert comfy.sent("GET", "/queue") == []
    assert entry == parse_history(OK_ID, capture("get_history_ok"))


async def test_a_socket_that_saw_all_of_a_cached_prompt_has_its_output_too() -> None:
    cached_id = "7406cc1f-a455-4b02-9a93-c959874872b2"  # the prompt of ws_run_all_cached
    comfy = FakeComfy()
    comfy.on("GET", f"/history/{cached_id}", httpx.Response(500))  # never needed
    socket = ScriptedSocket(frames_of("ws_run_all_cached"))
    accepting(comfy, socket)
    async with comfy.client(serving(socket)) as client:
        entry = await client.submit_and_wait(
            GRAPH, prompt_id=cached_id, client_id=CLIENT_ID, poll_interval=60.0
        )
    assert [(f.node_id, f.filename, f.type) for f in entry.outputs] == [
        ("3", "sweep_probe_00001_.png", "output")
    ]
    assert comfy.sent("GET", f"/history/{cached_id}") == []


async def test_a_prompt_its_socket_did_not_see_succeed_is_judged_by_its_history() -> None:
    frames = [f for f in frames_of("ws_run_fresh") if '"execution_success"' not in f]
    comfy = comfy_with(capture("get_history_ok"))
    socket = ScriptedSocket(frames)
    accepting(comfy, socket)
    async with comfy.client(serving(socket)) as client:
        entry = await client.submit_and_wait(
            GRAPH, prompt_id=OK_ID, client_id=CLIENT_ID, poll_interval=60.0
        )
    assert entry == parse_history(OK_ID, capture("get_history_ok"))
    assert history_reads(comfy) == 1


async def test_a_socket_opened_after_the_submission_leaves_the_result_to_the_history() -> None:
    # `wait` follows a prompt submitted earlier: its socket may have missed its `executed`.
    frames = [f for f in frames_of("ws_run_fresh") if '"executed"' not in f]
    comfy = comfy_with(UNFINISHED, capture("get_history_ok"))
    socket = ScriptedSocket(frames)
    async with comfy.client(serving(socket)) as client:
        entry = await client.wait(OK_ID, client_id=CLIENT_ID, poll_interval=60.0)
    assert [f.filename for f in entry.outputs] == ["sweep_probe_00001_.png"]
    assert history_reads(comfy) == 2


async def test_without_a_socket_the_prompt_is_submitted_anyway_and_polled() -> None:
    comfy = comfy_with(UNFINISHED, UNFINISHED, capture("get_history_ok"))
    submissions = accepting(comfy)
    async with comfy.client() as client:  # its WebSocket connect is refused
        entry = await client.submit_and_wait(
            GRAPH, prompt_id=OK_ID, client_id=CLIENT_ID, poll_interval=FAST
        )
    assert entry.status_str == "success"
    assert len(submissions) == 1
    assert history_reads(comfy) == 3


async def test_a_socket_lost_after_submission_never_submits_twice() -> None:
    greeting = frames_of("ws_run_fresh")[:1]
    comfy = comfy_with(*[UNFINISHED] * 8, capture("get_history_ok"))
    socket = ScriptedSocket(greeting, drop_at_end=True)
    submissions = accepting(comfy, socket)
    async with comfy.client(serving(socket)) as client:
        entry = await client.submit_and_wait(
            GRAPH, prompt_id=OK_ID, client_id=CLIENT_ID, poll_interval=FAST
        )
    assert entry.status_str == "success"
    assert submissions == [1]
    assert client.connects >= 2


async def test_a_socket_that_never_greets_falls_back_to_submitting_and_polling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("app.comfy.channel.GREETING_TIMEOUT_S", 0.05)
    comfy = comfy_with(UNFINISHED, capture("get_history_ok"))
    socket = ScriptedSocket([])  # connected, but silent
    submissions = accepting(comfy, socket)
    async with comfy.client(serving(socket)) as client:
        entry = await client.submit_and_wait(
            GRAPH, prompt_id=OK_ID, client_id=CLIENT_ID, poll_interval=FAST, timeout=5.0
        )
    assert entry.status_str == "success"
    assert submissions == [0]


async def test_a_rejected_prompt_fails_submit_and_wait_as_validation() -> None:
    comfy = comfy_with(UNFINISHED)
    comfy.on("POST", "/prompt", captured_response("post_prompt_value_out_of_range"))
    socket = ScriptedSocket(frames_of("ws_run_fresh")[:1])
    async with comfy.client(serving(socket)) as client:
        with pytest.raises(ComfyError) as raised:
            await client.submit_and_wait(
                GRAPH, prompt_id=OK_ID, client_id=CLIENT_ID, poll_interval=FAST
            )
    assert raised.value.error.kind == "validation"
    assert history_reads(comfy) == 0
