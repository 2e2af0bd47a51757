"""Checkpoint loads for 2 checkpoints × 50 runs on 2 instances: comfy-sweep against a plain
round-robin order, measured in the same run (`bench.direct_driver.deal` sends the same runs'
prompts to the same stand-ins, run i to instance i mod 2), and against the minimum (each
instance used loads one checkpoint, once). The loads are the stand-ins' own counts.

Both run orders of the sweep are measured: the checkpoint varying fastest (an axis before the
seed axis) and slowest (50 seeds per value), since round-robin fares very differently on them.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.direct_driver import Graph, build_prompt, deal
from bench.sweep_client import SweepClient
from bench.system import running_system

CHECKPOINTS = ["v1-5-pruned-emaonly.safetensors", "dreamshaper_8.safetensors"]
INSTANCES = 2
BASE = {"steps": 4, "width": 64, "height": 64}
BODIES: dict[str, dict[str, Any]] = {
    "checkpoint varies fastest": {
        "workflow": "sd15-txt2img",
        "base": BASE,
        "axes": [
            {"param": "checkpoint", "values": CHECKPOINTS},
            {"param": "seed", "values": "1-50"},
        ],
    },
    "checkpoint varies slowest": {
        "workflow": "sd15-txt2img",
        "base": BASE,
        "axes": [{"param": "checkpoint", "values": CHECKPOINTS}],
        "seeds": {"count": 50, "start": 1},
    },
}


def bench_checkpoint_loads(workdir: Path) -> None:
    print(f"checkpoint loads: {len(CHECKPOINTS)} checkpoints x 50 runs on {INSTANCES} instances")
    args = ["--step-ms", "5", "--checkpoint-load-ms", "300"]
    with (
        running_system(workdir / "loads", INSTANCES, args) as system,
        SweepClient(system) as client,
    ):
        for label, body in BODIES.items():
            _free(system.standins)
            before = _loads(system.standins)
            timing = client.run_sweep(body)
            loads = [b - a for a, b in zip(before, _loads(system.standins), strict=True)]
            assignments = client.assignments(timing.sweep_id)
            _free(system.standins)
            before = _loads(system.standins)
            dealt = deal(system.standins, _prompts(assignments), system.settings.instance_slots)
            dealt_loads = [b - a for a, b in zip(before, _loads(system.standins), strict=True)]
            order = [run["checkpoint"] for run in assignments]
            minimum = max(len(CHECKPOINTS), INSTANCES)
            print(
                f"  {label}: comfy-sweep {sum(loads)} loads {loads} ({timing.status}, "
                f"{timing.makespan_s:.2f} s); round-robin {sum(dealt_loads)} loads {dealt_loads} "
                f"({dealt.makespan_s:.2f} s; {round_robin_loads(order, INSTANCES)} expected); "
                f"minimum {minimum}"
            )


def _prompts(assignments: Sequence[Mapping[str, Any]]) -> list[Graph]:
    """The runs' prompts as the driver builds them: what loads a checkpoint is the same."""
    return [
        build_prompt(
            "sd15-txt2img",
            {**BASE, "seed": run["seed"], "checkpoint": run["checkpoint"]},
            f"round-robin/{n:06d}",
        )
        for n, run in enumerate(assignments)
    ]


def _free(urls: Sequence[str]) -> None:
    """Empty each stand-in's cache, so every order starts from nothing loaded."""
    for url in urls:
        response = httpx.post(f"{url}/free", json={"free_memory": True}, timeout=5)
        response.raise_for_status()


def round_robin_loads(order: Sequence[str], instances: int) -> int:
    """The loads the dealt order should cost, a check on the measured count: run i goes to
    instance i mod `instances`, which holds one checkpoint at a time: its first, then every
    change."""
    total = 0
    for first in range(instances):
        dealt = order[first::instances]
        if dealt:
            total += 1 + sum(1 for a, b in itertools.pairwise(dealt) if a != b)
    return total


def _loads(urls: Sequence[str]) -> list[int]:
    return [
        int(httpx.get(f"{url}/system_stats", timeout=5).json()["standin"]["checkpoint_loads"])
        for url in urls
    ]
