"""ComfyUI's wire format as pydantic models, and the parsers from its raw JSON to our types.

Everything ComfyUI sends becomes a model here, at the edge; nothing else in the service reads
ComfyUI's JSON shapes. No I/O. Shapes follow ComfyUI 0.3.64 (server.py, execution.py) and the
captures in tests/fixtures/comfyui/. Unknown fields are ignored so newer servers still parse.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, ValidationError

from app.comfy.errors import RunError

log = logging.getLogger(__name__)


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


def _object_or_empty(value: object) -> object:
    # ComfyUI answers `"node_errors": []` (a list) on some whole-prompt errors ("no_prompt").
    return {} if value == [] else value


# --- POST /prompt -------------------------------------------------------------------------


class ErrorExtraInfo(_Wire):
    input_name: str | None = None
    received_value: JsonValue = None
    exception_type: str | None = None
    exception_message: str | None = None


class NodeErrorItem(_Wire):
    type: str = ""
    message: str = ""
    details: str = ""
    extra_info: ErrorExtraInfo = ErrorExtraInfo()


class NodeError(_Wire):
    errors: list[NodeErrorItem] = []
    dependent_outputs: list[str] = []
    class_type: str | None = None


NodeErrors = Annotated[dict[str, NodeError], BeforeValidator(_object_or_empty)]


class PromptAccepted(_Wire):
    prompt_id: str
    number: int | float  # float when a client posts an explicit "number"; negative for "front"
    node_errors: NodeErrors = {}


class PromptErrorBody(_Wire):
    type: str = ""
    message: str = ""
    details: str = ""


class PromptRejected(_Wire):
    error: PromptErrorBody | str | None = None
    node_errors: NodeErrors = {}


# --- WebSocket /ws ------------------------------------------------------------------------


class ExecInfo(_Wire):
    queue_remaining: int = 0


class StatusBody(_Wire):
    exec_info: ExecInfo = ExecInfo()


class StatusData(_Wire):
    status: StatusBody = StatusBody()
    sid: str | None = None


class PromptEventData(_Wire):
    prompt_id: str | None = None
    timestamp: int | None = None


class CachedData(PromptEventData):
    nodes: list[str] = []


class ExecutingData(_Wire):
    node: str | None = None  # None: the prompt finished and its history entry exists
    display_node: str | None = None
    prompt_id: str | None = None  # absent on the replay ComfyUI sends right after a connect


class ProgressData(_Wire):
    value: float
    max: float
    node: str | None = None
    prompt_id: str | None = None


class NodeProgress(_Wire):
    value: float = 0.0
    max: float = 1.0
    state: str = ""


class ProgressStateData(_Wire):
    prompt_id: str | None = None
    nodes: dict[str, NodeProgress] = {}


class ExecutedData(_Wire):
    node: str
    display_node: str | None = None
    output: dict[str, JsonValue] | None = None
    prompt_id: str | None = None

    def files(self) -> list[OutputFile]:
        return _node_files(self.node, self.output or {})


class ExecutionErrorData(PromptEventData):
    node_id: str | None = None
    node_type: str | None = None
    executed: list[str] = []
    exception_type: str = ""
    exception_message: str = ""
    traceback: list[str] = []

    def to_run_error(self) -> RunError:
        message = self.exception_message.strip() or self.exception_type or "node failed"
        return RunError(
            kind="execution",
            message=message,
            node_id=self.node_id,
            class_type=self.node_type,
            details=self.exception_type or None,
        )


class ExecutionInterruptedData(PromptEventData):
    node_id: str | None = None
    node_type: str | None = None
    executed: list[str] = []

    def to_run_error(self) -> RunError:
        where = f" at node {self.node_id}" if self.node_id else ""
        return RunError(
            kind="interrupted",
            message=f"interrupted{where}",
            node_id=self.node_id,
            class_type=self.node_type,
        )


class StatusMessage(_Wire):
    type: Literal["status"]
    data: StatusData


class ExecutionStartMessage(_Wire):
    type: Literal["execution_start"]
    data: PromptEventData


class ExecutionCachedMessage(_Wire):
    type: Literal["execution_cached"]
    data: CachedData


class ExecutingMessage(_Wire):
    type: Literal["executing"]
    data: ExecutingData


class ProgressMessage(_Wire):
    type: Literal["progress"]
    data: ProgressData


class ProgressStateMessage(_Wire):
    type: Literal["progress_state"]
    data: ProgressStateData


class ExecutedMessage(_Wire):
    type: Literal["executed"]
    data: ExecutedData


class ExecutionSuccessMessage(_Wire):
    type: Literal["execution_success"]
    data: PromptEventData


class ExecutionErrorMessage(_Wire):
    type: Literal["execution_error"]
    data: ExecutionErrorData


class ExecutionInterruptedMessage(_Wire):
    type: Literal["execution_interrupted"]
    data: ExecutionInterruptedData


WsMessage = Annotated[
    StatusMessage
    | ExecutionStartMessage
    | ExecutionCachedMessage
    | ExecutingMessage
    | ProgressMessage
    | ProgressStateMessage
    | ExecutedMessage
    | ExecutionSuccessMessage
    | ExecutionErrorMessage
    | ExecutionInterruptedMessage,
    Field(discriminator="type"),
]


class _Envelope(_Wire):
    message: WsMessage


WS_MESSAGE_TYPES: frozenset[str] = frozenset(
    {
        "status",
        "execution_start",
        "execution_cached",
        "executing",
        "progress",
        "progress_state",
        "executed",
        "execution_success",
        "execution_error",
        "execution_interrupted",
    }
)


def parse_ws_message(frame: str | bytes) -> WsMessage | None:
    """A text frame as a message; None for binary frames (previews), unknown or bad messages.

    A malformed message is logged and skipped rather than raised: the history entry, read when
    the prompt finishes, is the final word, so one odd event must not end a wait.
    """
    if isinstance(frame, bytes):
        return None
    try:
        raw = json.loads(frame)
    except ValueError:
        log.warning("comfy.ws_bad_frame reason=not_json length=%d", len(frame))
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in WS_MESSAGE_TYPES:
        return None  # e.g. "feature_flags", custom nodes' events
    try:
        return _Envelope.model_validate({"message": raw}).message
    except ValidationError as ex:
        log.warning("comfy.ws_bad_frame type=%s errors=%d", kind, ex.error_count())
        return None


def is_finish_signal(frame: str | bytes, prompt_id: str) -> bool:
    """Whether `frame` is `executing` with `node: null` for `prompt_id`, the signal that the
    prompt is done. For a follower nobody watches: a prompt sends dozens of frames (progress
    at every step), and validating each with pydantic only to learn this cost a worker about
    a millisecond per run."""
    if isinstance(frame, bytes) or '"executing"' not in frame or prompt_id not in frame:
        return False
    try:
        raw = json.loads(frame)
    except ValueError:
        return False
    if not isinstance(raw, dict) or raw.get("type") != "executing":
        return False
    data = raw.get("data")
    return (
        isinstance(data, dict) and data.get("node") is None and data.get("prompt_id") == prompt_id
    )


def prompt_id_of(message: WsMessage) -> str | None:
    """The prompt a message is about; None for `status`, which is about the whole instance."""
    return None if isinstance(message, StatusMessage) else message.data.prompt_id


# --- GET /history ---------------------------------------------------------------------------


class OutputFile(_Wire):
    node_id: str
    filename: str
    subfolder: str = ""
    type: str = "output"  # "output", or "temp" for PreviewImage
    animated: bool = False


class HistoryEntry(_Wire):
    prompt_id: str
    status_str: str
    completed: bool
    outputs: list[OutputFile]
    error: RunError | None = None


class _RawStatus(_Wire):
    status_str: str = ""
    completed: bool = False
    messages: list[tuple[str, JsonValue]] = []


class _RawHistoryItem(_Wire):
    outputs: dict[str, dict[str, JsonValue]] = {}
    status: _RawStatus = _RawStatus()


def parse_history(prompt_id: str, body: object) -> HistoryEntry | None:
    """The entry for `prompt_id` in a `/history/{id}` answer; None while it has not finished."""
    if not isinstance(body, dict):
        raise ValueError("history answer is not a JSON object")
    raw = body.get(prompt_id)
    if raw is None:
        return None
    item = _RawHistoryItem.model_validate(raw)
    outputs = [file for node_id, out in item.outputs.items() for file in _node_files(node_id, out)]
    return HistoryEntry(
        prompt_id=prompt_id,
        status_str=item.status.status_str,
        completed=item.status.completed,
        outputs=outputs,
        error=_history_error(item.status),
    )


def _node_files(node_id: str, output: Mapping[str, JsonValue]) -> list[OutputFile]:
    # SaveVideo / SaveAnimatedWEBP list their file under "images" with "animated": [true], one
    # flag per node; VideoHelperSuite lists videos under "gifs". Any list of {"filename", ...}
    # is a file (SaveAudio uses "audio"); other entries ("text") are not.
    flags = output.get("animated")
    node_animated = isinstance(flags, list) and any(flag is True for flag in flags)
    files: list[OutputFile] = []
    for key, items in output.items():
        if key == "animated" or not isinstance(items, list):
            continue
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("filename"), str):
                ref: dict[str, JsonValue] = {"node_id": node_id}
                ref |= {k: item[k] for k in ("filename", "subfolder", "type") if k in item}
                ref["animated"] = node_animated or key == "gifs"
                files.append(OutputFile.model_validate(ref))
    return files


def _history_error(status: _RawStatus) -> RunError | None:
    for event, data in status.messages:
        if not isinstance(data, dict):
            continue
        if event == "execution_error":
            return ExecutionErrorData.model_validate(data).to_run_error()
        if event == "execution_interrupted":
            return ExecutionInterruptedData.model_validate(data).to_run_error()
    if status.status_str == "error":
        return RunError(kind="execution", message="ComfyUI reported an error without details")
    return None


# --- GET /queue -----------------------------------------------------------------------------


class QueueState(_Wire):
    running: list[str]  # prompt ids in execution order (sorted by queue number)
    pending: list[str]

    def holds(self, prompt_id: str) -> bool:
        return prompt_id in self.running or prompt_id in self.pending


def parse_queue(body: object) -> QueueState:
    """`/queue` lists a heap in no particular order: sort by number (front=true is negative)."""
    if not isinstance(body, dict):
        raise ValueError("queue answer is not a JSON object")
    return QueueState(
        running=_queue_ids(body.get("queue_running", [])),
        pending=_queue_ids(body.get("queue_pending", [])),
    )


def _queue_ids(items: object) -> list[str]:
    if not isinstance(items, list):
        raise ValueError("queue list is not a JSON array")
    entries: list[tuple[float, str]] = []
    for item in items:
        if not (isinstance(item, list) and len(item) >= 2 and isinstance(item[1], str)):
            raise ValueError("queue item is not [number, prompt_id, ...]")
        number = item[0]
        if not isinstance(number, int | float) or isinstance(number, bool):
            raise ValueError("queue item number is not a number")
        entries.append((float(number), item[1]))
    return [prompt_id for _, prompt_id in sorted(entries)]
