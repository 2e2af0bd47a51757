"""The ComfyUI edge: the only code that speaks to ComfyUI instances (see client.py)."""

from app.comfy.client import ComfyClient
from app.comfy.download import Downloaded
from app.comfy.errors import ComfyError, ErrorKind, RunError, is_retryable
from app.comfy.protocol import HistoryEntry, OutputFile, PromptAccepted, QueueState, WsMessage

__all__ = [
    "ComfyClient",
    "ComfyError",
    "Downloaded",
    "ErrorKind",
    "HistoryEntry",
    "OutputFile",
    "PromptAccepted",
    "QueueState",
    "RunError",
    "WsMessage",
    "is_retryable",
]
