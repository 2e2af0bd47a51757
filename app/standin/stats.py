"""Counters benchmarks read from `/system_stats` (key `standin`), and the system_stats body."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter

from app.standin.graph import JsonObject, JsonValue

COMFYUI_VERSION = "0.3.64"


class StandinStats:
    """What the executor really did; cached nodes count nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.prompts_submitted = 0
        self.prompts_executed = 0
        self.nodes_executed = 0
        self.checkpoint_loads = 0
        # Seconds spent executing prompts: the "GPU busy" time a benchmark compares with
        # wall time to see how much the orchestrator kept the instance waiting.
        self.busy_s = 0.0
        # Wall-clock edges of execution and the idle time between consecutive prompts: how
        # long the orchestrator let the queue run dry while it still had work to give.
        self.first_started_at: float | None = None
        self.last_finished_at: float | None = None
        self.idle_between_s = 0.0
        self._loads: Counter[str] = Counter()
        self.sockets_opened = 0  # WebSocket connections accepted: how often clients connect

    def prompt_submitted(self) -> int:
        """Count a `POST /prompt` received (valid or not); returns its 1-based ordinal."""
        with self._lock:
            self.prompts_submitted += 1
            return self.prompts_submitted

    def socket_opened(self) -> None:
        with self._lock:
            self.sockets_opened += 1

    def start_prompt(self) -> int:
        """Count a prompt the executor takes up; returns its 1-based ordinal."""
        now = time.time()
        with self._lock:
            self.prompts_executed += 1
            if self.first_started_at is None:
                self.first_started_at = now
            elif self.last_finished_at is not None:
                self.idle_between_s += max(0.0, now - self.last_finished_at)
            return self.prompts_executed

    def prompt_finished(self, seconds: float) -> None:
        with self._lock:
            self.busy_s += seconds
            self.last_finished_at = time.time()

    def new_timing_window(self) -> None:
        """Start busy and idle time afresh, so a benchmark can measure one sweep after a
        warm-up; counts stay, because fault ordinals are reckoned from them."""
        with self._lock:
            self.busy_s = 0.0
            self.idle_between_s = 0.0
            self.first_started_at = None
            self.last_finished_at = None

    def node_executed(self) -> None:
        with self._lock:
            self.nodes_executed += 1

    def model_loaded(self, folder: str, name: str) -> None:
        with self._lock:
            self._loads[f"{folder}/{name}"] += 1
            if folder in ("checkpoints", "diffusion_models"):
                self.checkpoint_loads += 1

    def as_json(self) -> JsonObject:
        with self._lock:
            loads: dict[str, JsonValue] = dict(self._loads)
            return {
                "checkpoint_loads": self.checkpoint_loads,
                "model_loads": sum(self._loads.values()),
                "loads_by_file": loads,
                "prompts_submitted": self.prompts_submitted,
                "prompts_executed": self.prompts_executed,
                "nodes_executed": self.nodes_executed,
                "sockets_opened": self.sockets_opened,
                "busy_s": round(self.busy_s, 4),
                "idle_between_s": round(self.idle_between_s, 4),
                "first_started_at": self.first_started_at,
                "last_finished_at": self.last_finished_at,
            }


def _memory() -> tuple[int, int]:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0, 0


def system_stats(stats: StandinStats, extra: JsonObject) -> JsonObject:
    """The shape of ComfyUI's `/system_stats` (a CPU device), plus the `standin` counters."""
    total, free = _memory()
    standin = stats.as_json()
    standin.update(extra)
    return {
        "system": {
            "os": os.name,
            "ram_total": total,
            "ram_free": free,
            "comfyui_version": COMFYUI_VERSION,
            "required_frontend_version": "1.27.10",
            "installed_templates_version": "0.1.95",
            "required_templates_version": "0.1.95",
            "python_version": sys.version,
            "pytorch_version": "none (comfy-sweep stand-in)",
            "embedded_python": False,
            "argv": list(sys.argv),
        },
        "devices": [
            {
                "name": "cpu",
                "type": "cpu",
                "index": None,
                "vram_total": total,
                "vram_free": free,
                "torch_vram_total": total,
                "torch_vram_free": free,
            }
        ],
        "standin": standin,
    }
