"""The executor thread: takes prompts off the queue one at a time and records their history.

As in ComfyUI's `prompt_worker`, the history entry is written (and `status` announced) before
`executing` with `node: null` goes out, so a client that sees that event can read the entry.
`/free` flags are applied between prompts: `free_memory` empties the output cache, so the
next prompt reloads its models.
"""

from __future__ import annotations

import copy
import logging
import threading

from app.standin.events import EventHub
from app.standin.executor import Executor, Outcome
from app.standin.graph import JsonObject, JsonValue
from app.standin.history import History
from app.standin.queue import PromptQueue, QueueItem

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self, queue: PromptQueue, history: History, executor: Executor, hub: EventHub
    ) -> None:
        self.queue = queue
        self.history = history
        self.executor = executor
        self.hub = hub
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="standin-executor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self.queue.close()
        self.executor.interrupt.set()  # ends a hang fault
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            taken = self.queue.get(timeout=1.0)
            if taken is not None:
                self._run(*taken)
            flags = self.queue.take_flags()
            if flags.get("free_memory"):
                self.executor.cache.clear()

    def _run(self, item: QueueItem, task_id: int) -> None:
        try:
            outcome = self.executor.execute(item)
        except Exception as ex:  # a stand-in bug must not wedge the queue: record and go on
            log.exception("executor crashed prompt=%s", item.prompt_id)
            message: JsonObject = {"prompt_id": item.prompt_id, "exception_message": repr(ex)}
            outcome = Outcome(False, [["execution_error", message]], {}, {})
        self.history.add(item.prompt_id, self._entry(item, outcome))
        self.queue.task_done(task_id)
        if item.client_id is not None:
            self.hub.send("executing", {"node": None, "prompt_id": item.prompt_id}, item.client_id)

    @staticmethod
    def _entry(item: QueueItem, outcome: Outcome) -> JsonObject:
        status: JsonObject = {
            "status_str": "success" if outcome.success else "error",
            "completed": outcome.success,
            "messages": outcome.messages,
        }
        prompt: JsonValue = copy.deepcopy(item.wire())
        return {
            "prompt": prompt,
            "outputs": outcome.outputs,
            "status": status,
            "meta": outcome.meta,
        }
