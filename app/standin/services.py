"""Everything one stand-in process holds, built once from its config and shared by the routes."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.standin.config import StandinConfig
from app.standin.events import EventHub
from app.standin.executor import Executor
from app.standin.faults import FaultSwitch
from app.standin.history import History
from app.standin.nodes import NODE_FUNCTIONS
from app.standin.queue import PromptQueue
from app.standin.specs import NodeSpec, load_specs
from app.standin.stats import StandinStats
from app.standin.worker import Worker


@dataclass
class Services:
    config: StandinConfig
    specs: dict[str, NodeSpec]
    hub: EventHub
    queue: PromptQueue
    history: History
    stats: StandinStats
    faults: FaultSwitch
    executor: Executor
    worker: Worker
    next_number: int = 0  # ComfyUI's `self.number`: bumped by every POST /prompt
    object_info: bytes = field(default=b"", repr=False)

    def queue_info(self) -> dict[str, dict[str, int]]:
        return {"exec_info": {"queue_remaining": self.queue.remaining()}}


def build_services(config: StandinConfig) -> Services:
    specs = load_specs(config.model_files)
    missing = set(specs) ^ set(NODE_FUNCTIONS)
    if missing:
        raise RuntimeError(
            f"object_info.json and the node implementations disagree: {sorted(missing)}"
        )
    for directory in (config.output_dir, config.temp_dir, config.input_dir):
        directory.mkdir(parents=True, exist_ok=True)
    hub = EventHub()
    stats = StandinStats()
    faults = FaultSwitch(config.faults)
    history = History()

    def announce_status() -> None:
        hub.send("status", {"status": {"exec_info": {"queue_remaining": queue.remaining()}}})

    queue = PromptQueue(announce_status)
    executor = Executor(config, specs, NODE_FUNCTIONS, hub, stats, faults)
    worker = Worker(queue, history, executor, hub)
    return Services(config, specs, hub, queue, history, stats, faults, executor, worker)
