"""The prompt queue: a heap ordered by `number`, what is running, and the executor's flags.

Shaped like ComfyUI's PromptQueue: `number` decides order (front=true gives a negative one),
`/queue` shows the heap as stored, not sorted, and every change announces a `status` event
with the new `queue_remaining` (pending plus running).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from app.standin.graph import Graph, JsonObject, JsonValue


@dataclass(order=True)
class QueueItem:
    number: int | float
    prompt_id: str
    sequence: int  # breaks ties the way heap insertion would, never compares graphs
    prompt: Graph = field(compare=False)
    extra_data: JsonObject = field(compare=False)
    outputs: list[str] = field(compare=False)

    @property
    def client_id(self) -> str | None:
        value = self.extra_data.get("client_id")
        return None if value is None else str(value)

    def wire(self) -> list[JsonValue]:
        """`[number, prompt_id, prompt, extra_data, outputs_to_execute]` as ComfyUI lists it."""
        outputs: list[JsonValue] = list(self.outputs)
        return [self.number, self.prompt_id, self.prompt, self.extra_data, outputs]


class PromptQueue:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._cond = threading.Condition()
        self._heap: list[QueueItem] = []
        self._running: dict[int, QueueItem] = {}
        self._task_counter = 0
        self._sequence = 0
        self._flags: dict[str, bool] = {}
        self._closed = False
        self._on_change = on_change

    def put(
        self,
        number: int | float,
        prompt_id: str,
        prompt: Graph,
        extra: JsonObject,
        outputs: list[str],
    ) -> None:
        with self._cond:
            self._sequence += 1
            item = QueueItem(number, prompt_id, self._sequence, prompt, extra, outputs)
            heapq.heappush(self._heap, item)
            self._on_change()
            self._cond.notify_all()

    def get(self, timeout: float) -> tuple[QueueItem, int] | None:
        """Take the next prompt and mark it running; None on timeout or after `close`."""
        with self._cond:
            if not self._heap and not self._closed:
                self._cond.wait(timeout)
            if not self._heap or self._closed:
                return None
            item = heapq.heappop(self._heap)
            task_id = self._task_counter
            self._task_counter += 1
            self._running[task_id] = item
            self._on_change()
            return item, task_id

    def task_done(self, task_id: int) -> None:
        with self._cond:
            self._running.pop(task_id, None)
            self._on_change()

    def running(self) -> list[QueueItem]:
        with self._cond:
            return list(self._running.values())

    def pending(self) -> list[QueueItem]:
        with self._cond:
            return list(self._heap)

    def remaining(self) -> int:
        with self._cond:
            return len(self._heap) + len(self._running)

    def wipe(self) -> None:
        with self._cond:
            self._heap = []
            self._on_change()

    def delete(self, prompt_id: str) -> bool:
        """Remove the first pending item with this id (ComfyUI announces twice for the last)."""
        with self._cond:
            for index, item in enumerate(self._heap):
                if item.prompt_id != prompt_id:
                    continue
                if len(self._heap) == 1:
                    self.wipe()
                else:
                    self._heap.pop(index)
                    heapq.heapify(self._heap)
                self._on_change()
                return True
        return False

    def set_flag(self, name: str) -> None:
        with self._cond:
            self._flags[name] = True
            self._cond.notify_all()

    def take_flags(self) -> dict[str, bool]:
        with self._cond:
            flags, self._flags = self._flags, {}
            return flags

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
