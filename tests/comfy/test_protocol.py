"""ComfyUI's JSON (captured from 0.3.64) parsed into our wire models."""

from __future__ import annotations

import json
import logging

import pytest

from app.comfy.protocol import (
    ExecutedMessage,
    ExecutingMessage,
    ExecutionErrorMessage,
    ExecutionInterruptedMessage,
    OutputFile,
    ProgressMessage,
    StatusMessage,
    is_finish_signal,
    parse_history,
    parse_queue,
    parse_ws_message,
    prompt_id_of,
)
from tests.comfy.fakes import capture

OK_ID = "a5278fe9-7f05-4b93-aedf-b26a17628f5e"
ERROR_ID = "c895b2bd-1c6a-492e-986a-f2f34c6ebca0"
INTERRUPTED_ID = "a55e5726-d8cb-4a8b-80e5-ee21c87ea7fa"
VIDEO_ID = "61a9f9c0-080e-423e-ad39-dde663e4b680"
WS_CAPTURES = [
    "ws_00_hello_status",
    "ws_run_fresh",
    "ws_run_all_cached",
    "ws_run_partial_cache",
    "ws_execution_error",
    "ws_interrupted",
    "ws_runtime_candidate",
]


# --- history ----------------------------------------------------------------------------------


def test_a_successful_entry_lists_its_output_file() -> None:
    entry = parse_history(OK_ID, capture("get_history_ok"))
    assert entry is not None
    assert (entry.prompt_id, entry.status_str, entry.completed, entry.error) == (
        OK_ID,
        "success",
        True,
        None,
    )
    assert entry.outputs == [
        OutputFile(node_id="3", filename="sweep_probe_00001_.png", subfolder="", type="output")
    ]


def test_an_execution_error_names_the_node_and_the_exception() -> None:
    entry = parse_history(ERROR_ID, capture("get_history_execution_error"))
    assert entry is not None
    assert (entry.status_str, entry.completed, entry.outputs) == ("error", False, [])
    error = entry.error
    assert error is not None
    assert (error.kind, error.node_id, error.class_type) == ("execution", "3", "SaveVideo")
    assert "avcodec_open2" in error.message
    assert not error.message.endswith("\n")
    assert error.details == "av.error.ExternalError"


def test_an_interrupted_entry_says_where_it_stopped() -> None:
    entry = parse_history(INTERRUPTED_ID, capture("get_history_interrupted"))
    assert entry is not None
    assert (entry.status_str, entry.completed, entry.outputs) == ("error", False, [])
    assert entry.error is not None
    assert entry.error.kind == "interrupted"
    assert (entry.error.node_id, entry.error.class_type) == ("3", "SaveImage")


def test_videos_and_animations_are_flagged_and_previews_are_temp_files() -> None:
    entry = parse_history(VIDEO_ID, capture("get_history_video_and_preview"))
    assert entry is not None
    previews = [f for f in entry.outputs if f.node_id == "6"]
    assert len(previews) == 6
    assert {(f.type, f.animated, f.subfolder) for f in previews} == {("temp", False, "")}
    assert [f for f in entry.outputs if f.node_id != "6"] == [
        OutputFile(node_id="3", filename="probe_00001_.mp4", subfolder="video", animated=True),
        OutputFile(node_id="5", filename="anim_00001_.webp", subfolder="", animated=True),
    ]


def test_a_fully_cached_prompt_still_lists_the_earlier_file() -> None:
    prompt_id = "7406cc1f-a455-4b02-9a93-c959874872b2"
    entry = parse_history(prompt_id, capture("get_history_all_cached"))
    assert entry is not None
    assert entry.error is None
    assert [f.filename for f in entry.outputs] == ["sweep_probe_00001_.png"]


def test_an_unknown_or_unfinished_prompt_has_no_entry() -> None:
    assert capture("get_history_unknown_id") == {}
    assert parse_history(OK_ID, capture("get_history_unknown_id")) is None
    assert parse_history(OK_ID, capture("get_history_interrupted")) is None


def test_other_file_lists_count_and_non_file_entries_do_not() -> None:
    body = {
        OK_ID: {
            "outputs": {
                "7": {"gifs": [{"filename": "v.mp4", "subfolder": "", "type": "output"}]},
                "8": {"audio": [{"filename": "a.flac", "subfolder": "s", "type": "output"}]},
                "9": {"text": ["hello"]},
            },
            "status": {"status_str": "success", "completed": True, "messages": []},
        }
    }
    entry = parse_history(OK_ID, body)
    assert entry is not None
    assert [(f.node_id, f.filename, f.animated) for f in entry.outputs] == [
        ("7", "v.mp4", True),  # VideoHelperSuite's videos
        ("8", "a.flac", False),
    ]


def test_an_error_status_without_a_message_is_still_an_error() -> None:
    body = {OK_ID: {"outputs": {}, "status": {"status_str": "error", "completed": False}}}
    entry = parse_history(OK_ID, body)
    assert entry is not None
    assert entry.error is not None
    assert entry.error.kind == "execution"


# --- queue --------------------------------------------------------------------------------


def test_the_busy_queue_lists_running_and_pending_ids() -> None:
    state = parse_queue(capture("get_queue_busy"))
    assert state.running == [INTERRUPTED_ID]
    assert state.pending == ["7f48e284-a5f5-4118-baae-6b478249015f"]
    assert state.holds(INTERRUPTED_ID)
    assert not state.holds(OK_ID)


def test_an_idle_queue_is_empty() -> None:
    state = parse_queue(capture("get_queue_idle"))
    assert (state.running, state.pending) == ([], [])


def test_pending_prompts_are_sorted_by_number_with_front_prompts_first() -> None:
    # /queue returns a heap; front=true prompts get negative numbers, later ones more negative.
    pending = [[5, "e", {}, {}, []], [-2, "b", {}, {}, []], [3.5, "d", {}], [-7, "a"], [0, "c"]]
    state = parse_queue({"queue_running": [], "queue_pending": pending})
    assert state.pending == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    "body",
    [[], {"queue_running": {}}, {"queue_pending": [["x", 1]]}, {"queue_pending": [[True, "a"]]}],
)
def test_a_malformed_queue_is_refused(body: object) -> None:
    with pytest.raises(ValueError, match="queue"):
        parse_queue(body)


# --- WebSocket ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", WS_CAPTURES)
def test_every_captured_message_parses_to_its_type(name: str) -> None:
    raw = capture(name)
    messages = raw if isinstance(raw, list) else [raw]
    for message in messages:
        parsed = parse_ws_message(json.dumps(message))
        assert parsed is not None, message["type"]
        assert parsed.type == message["type"]


def test_the_hello_status_carries_the_queue_length() -> None:
    parsed = parse_ws_message(json.dumps(capture("ws_00_hello_status")))
    assert isinstance(parsed, StatusMessage)
    assert parsed.data.status.exec_info.queue_remaining == 0
    assert parsed.data.sid == "3ac2c95c-b33d-4fbd-a7e2-e388828bad65"
    assert prompt_id_of(parsed) is None


def test_executing_with_a_null_node_marks_the_end_of_a_prompt() -> None:
    last = parse_ws_message(json.dumps(capture("ws_run_fresh")[-1]))
    assert isinstance(last, ExecutingMessage)
    assert last.data.node is None
    assert prompt_id_of(last) == OK_ID


def test_the_executing_replay_after_a_connect_has_no_prompt_id() -> None:
    parsed = parse_ws_message('{"type": "executing", "data": {"node": "4"}}')
    assert isinstance(parsed, ExecutingMessage)
    assert (parsed.data.node, prompt_id_of(parsed)) == ("4", None)


def test_executed_lists_the_output_files() -> None:
    executed = [m for m in capture("ws_run_all_cached") if m["type"] == "executed"]
    parsed = parse_ws_message(json.dumps(executed[0]))
    assert isinstance(parsed, ExecutedMessage)
    assert [f.filename for f in parsed.data.files()] == ["sweep_probe_00001_.png"]


def test_runtime_errors_and_interrupts_become_run_errors() -> None:
    error = next(m for m in capture("ws_execution_error") if m["type"] == "execution_error")
    parsed = parse_ws_message(json.dumps(error))
    assert isinstance(parsed, ExecutionErrorMessage)
    assert parsed.data.to_run_error().class_type == "SaveVideo"
    stop = next(m for m in capture("ws_interrupted") if m["type"] == "execution_interrupted")
    interrupted = parse_ws_message(json.dumps(stop))
    assert isinstance(interrupted, ExecutionInterruptedMessage)
    assert interrupted.data.to_run_error().kind == "interrupted"


def test_sampler_progress_parses() -> None:
    frame = {"type": "progress", "data": {"value": 3, "max": 20, "node": "5", "prompt_id": OK_ID}}
    parsed = parse_ws_message(json.dumps(frame))
    assert isinstance(parsed, ProgressMessage)
    assert (parsed.data.value, parsed.data.max, parsed.data.node) == (3, 20, "5")


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\x00\x00\x01\x00\x00\x00\x02\x89PNG",  # a binary preview frame
        '{"type": "feature_flags", "data": {}}',  # a type we do not use
        '{"type": "crystools.monitor", "data": {"cpu": 3}}',  # a custom node's event
        "[1, 2]",
    ],
)
def test_binary_and_unknown_frames_are_ignored(frame: str | bytes) -> None:
    assert parse_ws_message(frame) is None


@pytest.mark.parametrize(
    "frame", ["not json", '{"type": "progress", "data": {"node": "5"}}', '{"type": "status"}']
)
def test_malformed_frames_are_skipped_with_a_warning(
    frame: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.comfy.protocol"):
        assert parse_ws_message(frame) is None
    assert "comfy.ws_bad_frame" in caplog.text


# --- the finish signal, read without parsing every frame ------------------------------------


def finished_by_full_parse(frame: str | bytes, prompt_id: str) -> bool:
    message = parse_ws_message(frame)
    return (
        isinstance(message, ExecutingMessage)
        and message.data.node is None
        and prompt_id_of(message) == prompt_id
    )


def captured_frames() -> list[str | bytes]:
    frames: list[str | bytes] = []
    for name in WS_CAPTURES:
        raw = capture(name)
        frames += [json.dumps(m) for m in (raw if isinstance(raw, list) else [raw])]
        frames += [
            json.dumps(m, separators=(",", ":")) for m in (raw if isinstance(raw, list) else [raw])
        ]
    return frames


ODD_FRAMES: list[str | bytes] = [
    frame.replace("PID", OK_ID)
    for frame in (
        '{"type": "executing", "data": {"prompt_id": "PID"}}',  # no node at all
        '{"type": "executing", "data": {"node": "4", "prompt_id": "PID"}}',
        '{"type": "executed", "data": {"node": null, "prompt_id": "PID", "x": "executing"}}',
        '{"type": "executing", "data": null, "prompt_id": "PID"}',
        '{"type": "executing", "data": {"node": null, "prompt_id": "PID"',  # cut short
        '["executing", "PID"]',
        '{"type": "executing", "data": {"node": null, "prompt_id": "PID-x"}}',
    )
]
ODD_FRAMES.append(json.dumps(capture("ws_run_fresh")[-1]).encode())  # binary: a preview


@pytest.mark.parametrize("frame", [*captured_frames(), *ODD_FRAMES])
@pytest.mark.parametrize("prompt_id", [OK_ID, "7f48e284-a5f5-4118-baae-6b478249015f"])
def test_the_quick_finish_check_agrees_with_the_full_parse(
    frame: str | bytes, prompt_id: str
) -> None:
    assert is_finish_signal(frame, prompt_id) == finished_by_full_parse(frame, prompt_id)


def test_the_quick_finish_check_finds_the_end_of_a_captured_run() -> None:
    frames = [json.dumps(m) for m in capture("ws_run_fresh")]
    assert [is_finish_signal(f, OK_ID) for f in frames] == [False] * (len(frames) - 1) + [True]
