"""A prompt's result as its own socket saw it, which spares the `/history` read at its end.

Only a socket that ComfyUI registered before the prompt was submitted sees all its events:
ComfyUI sends to whichever socket holds the client id at that moment and buffers nothing. If
that socket is unregistered meanwhile (a stale close of an earlier socket with the same id
pops it, server.py `websocket_handler`), it receives no further event, the finish signal
included, so a socket that did see `executing` with `node: null` saw every event before it,
in order. Among them: `executed` for each output node, carrying the very `output` the history
entry lists under that node (execution.py sends both from the node's UI output, cached nodes
included), and `execution_success`. Anything else (an error, an interrupt, a socket that
connected after the submission) leaves the verdict to the history entry. No I/O.
"""

from __future__ import annotations

from app.comfy.protocol import (
    ExecutedMessage,
    ExecutionSuccessMessage,
    HistoryEntry,
    OutputFile,
    WsMessage,
    parse_ws_message,
    prompt_id_of,
)

# Only these frames say anything about the result; the rest (progress at every step) are
# never parsed for it.
_RESULT_TYPES = ('"executed"', '"execution_success"')


class Witness:
    """Collects what one prompt's socket, listening since before its submission, reports."""

    def __init__(self, prompt_id: str) -> None:
        self._prompt_id = prompt_id
        self._outputs: dict[str, list[OutputFile]] = {}  # by node, as the history entry
        self._succeeded = False

    def see_frame(self, frame: str | bytes) -> None:
        """A raw frame, parsed only when it may be about the result."""
        if isinstance(frame, bytes) or self._prompt_id not in frame:
            return
        if any(kind in frame for kind in _RESULT_TYPES):
            message = parse_ws_message(frame)
            if message is not None:
                self.see(message)

    def see(self, message: WsMessage) -> None:
        if prompt_id_of(message) != self._prompt_id:
            return
        if isinstance(message, ExecutedMessage):
            self._outputs[message.data.node] = message.data.files()
        elif isinstance(message, ExecutionSuccessMessage):
            self._succeeded = True

    def entry(self) -> HistoryEntry | None:
        """The prompt's entry as `/history` would give it, once the finish signal came: None
        unless it succeeded."""
        if not self._succeeded:
            return None
        outputs = [file for files in self._outputs.values() for file in files]
        return HistoryEntry(
            prompt_id=self._prompt_id, status_str="success", completed=True, outputs=outputs
        )
