"""A stand-in for the Celery app where a test needs only to know which messages were sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outbox:
    """Stands in for the Celery app: the messages sent, by task name."""

    sent: list[str] = field(default_factory=list)

    def send_task(self, name: str, args: list[Any], countdown: float | None = None) -> None:
        self.sent.append(name)
