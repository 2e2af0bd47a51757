"""Runs one prompt the way ComfyUI's PromptExecutor does, event for event.

Order per prompt: `execution_start`, `execution_cached` (every node whose signature is in the
cache), then for each node to visit (dependencies first): a cached node only reports
`executed` (if it is an output) and finishes its progress; any other node starts its progress,
sends `executing`, runs, sends `executed` if it produced UI output, finishes. Then
`execution_success`, or `execution_error` / `execution_interrupted` instead. History and the
final `executing` null are the worker's job. Per-prompt events go only to the prompt's
client_id; progress events and `execution_interrupted` go to everyone when it has none.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from app.standin.cache import CacheEntry, OutputCache, prompt_signatures
from app.standin.config import StandinConfig
from app.standin.events import EventHub
from app.standin.faults import FaultSwitch
from app.standin.graph import (
    JsonObject,
    JsonValue,
    as_link,
    class_type_of,
    node_inputs,
    plan_execution,
)
from app.standin.nodes.base import Interrupted, NodeCall, NodeFunction
from app.standin.progress import ProgressTracker
from app.standin.queue import QueueItem
from app.standin.specs import NodeSpec
from app.standin.stats import StandinStats

log = logging.getLogger(__name__)

DIE_FLUSH_SECONDS = 0.2  # lets the events already produced reach the sockets before dying


@dataclass(frozen=True)
class Outcome:
    success: bool
    messages: list[JsonValue]
    outputs: JsonObject
    meta: JsonObject


def _format_value(value: object) -> JsonValue:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _full_type_name(ex: BaseException) -> str:
    kind = type(ex)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


class Executor:
    """Owns the cache and the interrupt flag; `execute` runs on the worker thread only."""

    def __init__(
        self,
        config: StandinConfig,
        specs: dict[str, NodeSpec],
        functions: dict[str, NodeFunction],
        hub: EventHub,
        stats: StandinStats,
        faults: FaultSwitch,
    ) -> None:
        self.config = config
        self.specs = specs
        self.functions = functions
        self.hub = hub
        self.stats = stats
        self.faults = faults
        self.cache = OutputCache()
        self.interrupt = threading.Event()
        self.input_orders = {name: spec.input_order for name, spec in specs.items()}

    def execute(self, item: QueueItem) -> Outcome:
        ordinal = self.stats.start_prompt()
        self.interrupt.clear()  # like ComfyUI: an interrupt between prompts is forgotten
        started = time.monotonic()
        try:
            return PromptRun(self, item, ordinal).run()
        finally:
            self.stats.prompt_finished(time.monotonic() - started)

    def check_interrupt(self) -> None:
        if self.interrupt.is_set():
            self.interrupt.clear()
            raise Interrupted


class PromptRun:
    """One prompt's execution state; also the NodeRuntime its nodes call back into."""

    def __init__(self, executor: Executor, item: QueueItem, ordinal: int) -> None:
        self.ex = executor
        self.item = item
        self.graph = item.prompt
        self.client_id = item.client_id
        self.ordinal = ordinal
        self.messages: list[JsonValue] = []
        self.progress = ProgressTracker(executor.hub, item.prompt_id, self.client_id)
        self.executed: list[str] = []
        self.signatures: dict[str, str] = {}
        self.current_node = ""
        self.current_inputs: JsonObject = {}
        self.fault_checked = False

    # -- NodeRuntime ---------------------------------------------------------------------
    @property
    def output_dir(self) -> Path:
        return self.ex.config.output_dir

    @property
    def temp_dir(self) -> Path:
        return self.ex.config.temp_dir

    def load_model(self, folder: str, name: str, cost: float) -> None:
        if name not in self.ex.config.model_files.names(folder):
            raise FileNotFoundError(f"Model in folder '{folder}' with filename '{name}' not found.")
        time.sleep(cost * self.ex.config.checkpoint_load_ms / 1000)  # not interruptible
        self.ex.stats.model_loaded(folder, name)

    def sample(self, steps: int) -> None:
        for step in range(1, steps + 1):
            time.sleep(self.ex.config.step_ms / 1000)
            self.ex.check_interrupt()
            self.progress.update(self.current_node, step, steps)

    # -- the run -------------------------------------------------------------------------
    def add_message(self, event: str, data: JsonObject, broadcast: bool) -> None:
        data = {**data, "timestamp": int(time.time() * 1000)}
        self.messages.append([event, data])
        if self.client_id is not None or broadcast:
            self.ex.hub.send(event, data, self.client_id)

    def run(self) -> Outcome:
        hub, prompt_id = self.ex.hub, self.item.prompt_id
        hub.client_id = self.client_id
        self.add_message("execution_start", {"prompt_id": prompt_id}, broadcast=False)
        self.signatures = prompt_signatures(self.graph)
        self.ex.cache.keep_only(set(self.signatures.values()))
        cached = {n: self.ex.cache.get(s) is not None for n, s in self.signatures.items()}
        cached_nodes: list[JsonValue] = [n for n in self.graph if cached[n]]
        self.add_message("execution_cached", {"nodes": cached_nodes, "prompt_id": prompt_id}, False)
        success = self._visit_all(cached)
        if success:
            self.add_message("execution_success", {"prompt_id": prompt_id}, broadcast=False)
        hub.last_node_id = None
        outputs, meta = self._history_outputs()
        return Outcome(success, self.messages, outputs, meta)

    def _visit_all(self, cached: dict[str, bool]) -> bool:
        try:
            for node_id in plan_execution(
                self.graph, self.item.outputs, self.ex.input_orders, cached
            ):
                self._visit(node_id)
        except Interrupted:
            self._report_interrupted()
            return False
        except Exception as ex:
            self._report_error(ex)
            return False
        return True

    def _visit(self, node_id: str) -> None:
        self.current_node, self.current_inputs = node_id, {}
        entry = self.ex.cache.get(self.signatures[node_id])
        if entry is not None:  # cached, or produced earlier in this prompt by a twin node
            self._inject_fault()
            self._send_to_client(
                "executed", {"node": node_id, "display_node": node_id, "output": entry.ui}
            )
            self.progress.finish(node_id)
            return
        self.progress.start(node_id)
        inputs = self._resolve_inputs(node_id)
        if self.client_id is not None:
            self.ex.hub.last_node_id = node_id
        self._send_to_client("executing", {"node": node_id, "display_node": node_id})
        self._inject_fault()
        self.ex.check_interrupt()
        result = self.ex.functions[class_type_of(self.graph, node_id)](self._call(node_id, inputs))
        self.ex.cache.put(self.signatures[node_id], CacheEntry(result.outputs, result.ui))
        self.ex.stats.node_executed()
        if result.ui is not None:
            self._send_to_client(
                "executed", {"node": node_id, "display_node": node_id, "output": result.ui}
            )
        self.progress.finish(node_id)
        self.executed.append(node_id)

    def _send_to_client(self, event: str, data: JsonObject) -> None:
        if self.client_id is not None:
            self.ex.hub.send(event, {**data, "prompt_id": self.item.prompt_id}, self.client_id)

    def _resolve_inputs(self, node_id: str) -> dict[str, object]:
        resolved: dict[str, object] = {}
        spec = self.ex.specs[class_type_of(self.graph, node_id)]
        raw = node_inputs(self.graph, node_id)
        for name in spec.input_order:
            if name not in raw:
                continue
            link = as_link(raw[name])
            if link is None:
                resolved[name] = raw[name]
                continue
            upstream = self.ex.cache.get(self.signatures[link.node_id])
            if upstream is None:
                raise RuntimeError(f"output of node {link.node_id} is missing")
            resolved[name] = upstream.outputs[link.output_index]
        self.current_inputs = {k: [_format_value(v)] for k, v in resolved.items()}
        return resolved

    def _call(self, node_id: str, inputs: dict[str, object]) -> NodeCall:
        pnginfo = self.item.extra_data.get("extra_pnginfo")
        return NodeCall(
            node_id=node_id,
            class_type=class_type_of(self.graph, node_id),
            signature=self.signatures[node_id],
            inputs=inputs,
            prompt=self.graph,
            extra_pnginfo=pnginfo if isinstance(pnginfo, dict) else None,
            runtime=self,
        )

    def _inject_fault(self) -> None:
        """Apply `--faults` once per prompt, at the first node it reaches."""
        if self.fault_checked:
            return
        self.fault_checked = True
        plan = self.ex.faults.plan
        if plan.die.matches(self.ordinal):
            log.warning("fault die prompt=%s ordinal=%d", self.item.prompt_id, self.ordinal)
            time.sleep(DIE_FLUSH_SECONDS)
            os._exit(1)
        if plan.hang.matches(self.ordinal):
            while not self.ex.interrupt.wait(0.05):
                pass
            self.ex.check_interrupt()
        if plan.fail.matches(self.ordinal):
            raise RuntimeError(f"stand-in fault: prompt {self.ordinal} fails (--faults fail)")

    def _node_type(self) -> str:
        try:
            return class_type_of(self.graph, self.current_node)
        except (KeyError, TypeError):
            return ""

    def _report_interrupted(self) -> None:
        message: JsonObject = {
            "prompt_id": self.item.prompt_id,
            "node_id": self.current_node,
            "node_type": self._node_type(),
            "executed": list[JsonValue](self.executed),
        }
        self.add_message("execution_interrupted", message, broadcast=True)

    def _report_error(self, ex: Exception) -> None:
        log.info(
            "node failed prompt=%s node=%s error=%r", self.item.prompt_id, self.current_node, ex
        )
        message: JsonObject = {
            "prompt_id": self.item.prompt_id,
            "node_id": self.current_node,
            "node_type": self._node_type(),
            "executed": list[JsonValue](self.executed),
            "exception_message": f"{ex}\n",
            "exception_type": _full_type_name(ex),
            "traceback": list[JsonValue](traceback.format_tb(ex.__traceback__)),
            "current_inputs": self.current_inputs,
            "current_outputs": list[JsonValue](self.graph),
        }
        self.add_message("execution_error", message, broadcast=False)

    def _history_outputs(self) -> tuple[JsonObject, JsonObject]:
        outputs: JsonObject = {}
        meta: JsonObject = {}
        for node_id, signature in self.signatures.items():
            entry = self.ex.cache.get(signature)
            if entry is None or entry.ui is None:
                continue
            outputs[node_id] = entry.ui
            meta[node_id] = {
                "node_id": node_id,
                "display_node": node_id,
                "parent_node": None,
                "real_node_id": node_id,
            }
        return outputs, meta
