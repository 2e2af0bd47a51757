"""What can go wrong when a run meets ComfyUI, as data (`RunError`), and whether a retry can help.

`is_retryable` is the one place that decides retry or fail for ComfyUI errors; workers ask it
and never re-derive the answer from an error's kind or message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

ErrorKind = Literal["validation", "execution", "interrupted", "transport", "timeout", "protocol"]
ERROR_KINDS: frozenset[str] = frozenset(get_args(ErrorKind))


@dataclass(frozen=True)
class RunError:
    """One failure, stored as JSON on the run and shown to users."""

    kind: ErrorKind
    message: str
    node_id: str | None = None
    class_type: str | None = None
    input_name: str | None = None
    details: str | None = None  # e.g. the exception type, the received value, every node error

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunError:
        """The inverse of `to_json`, for errors read back from the database."""
        kind = data.get("kind")
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        optional = ("node_id", "class_type", "input_name", "details")
        extra = {name: _optional_str(data.get(name)) for name in optional}
        return cls(kind=kind, message=str(data.get("message", "")), **extra)


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


class ComfyError(Exception):
    """Raised by the ComfyUI client; `error` says what happened in the run's own terms."""

    def __init__(self, error: RunError) -> None:
        super().__init__(f"{error.kind}: {error.message}")
        self.error = error


# Why each kind is or is not worth another attempt:
# - validation: ComfyUI rejected the graph; the same graph is rejected again.
# - execution: a node raised. Some are transient (CUDA OOM), most are not; the worker applies
#   its own "retry once elsewhere" policy, so the answer here stays False.
# - interrupted: someone (a cancel, an operator) stopped it on purpose.
# - transport: ComfyUI was unreachable, answered 5xx, restarted and lost the prompt, or lost a
#   file it had listed; another attempt (or instance) can succeed.
# - timeout: the prompt did not finish in time; the instance may be stuck or just busy.
# - protocol: ComfyUI answered something we do not understand; repeating will not change it.
_RETRYABLE: dict[ErrorKind, bool] = {
    "validation": False,
    "execution": False,
    "interrupted": False,
    "transport": True,
    "timeout": True,
    "protocol": False,
}


def is_retryable(error: RunError) -> bool:
    return _RETRYABLE[error.kind]
