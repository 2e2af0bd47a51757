"""Preflight and dispatch-order time for 10,000-run sweeps, pure CPU (no database, no network).

Checks each sweep against the recorded `/object_info` with the shipped workflows' model files
filled in, as a pool instance with those models would report it. Prints min and median.

    python -m bench.preflight            # or: python -m bench.preflight --repeat 50
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from app.domain.contracts import contract_defaults
from app.domain.expansion import Axis, Mode, SweepPlan, count_runs, expand_sweep
from app.domain.ordering import dispatch_order, expensive_params
from app.domain.preflight import preflight_sweep
from app.domain.sampling import SampledRange, SamplingSpec, sample_points
from app.registry import Registry, Workflow, load_registry

ROOT = Path(__file__).resolve().parents[1]
MODEL_FILE_INPUTS = {
    ("CheckpointLoaderSimple", "ckpt_name"),
    ("LoraLoader", "lora_name"),
    ("UNETLoader", "unet_name"),
    ("DualCLIPLoader", "clip_name1"),
    ("DualCLIPLoader", "clip_name2"),
    ("VAELoader", "vae_name"),
}
CHECKPOINTS = ("v1-5-pruned-emaonly.safetensors", "dreamshaper_8.safetensors")


def object_info(registry: Registry) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(
        (ROOT / "tests" / "fixtures" / "object_info.json").read_text(encoding="utf-8")
    )
    for flow in registry:
        for node in flow.graph.values():
            for name, value in node["inputs"].items():
                if (node["class_type"], name) in MODEL_FILE_INPUTS:
                    info[node["class_type"]]["input"]["required"][name][0].append(value)
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0].append(CHECKPOINTS[1])
    return info


def plan(
    flow: Workflow,
    *axes: Axis,
    seeds: int = 0,
    mode: Mode = "cartesian",
    samples: tuple[dict[str, Any], ...] = (),
) -> SweepPlan:
    varied = (
        {a.param for a in axes}
        | ({"seed"} if seeds else set())
        | set(samples[0] if samples else ())
    )
    defaults = contract_defaults(flow.contract)
    return SweepPlan(
        fixed={k: v for k, v in defaults.items() if k not in varied},
        axes=axes,
        mode=mode,
        seed_param="seed" if seeds else None,
        seeds=tuple(range(1, seeds + 1)),
        samples=samples,
    )


def sweeps(registry: Registry) -> dict[str, tuple[Workflow, SweepPlan]]:
    sd15 = registry.get("sd15-txt2img")
    assert sd15 is not None
    spec = SamplingSpec(
        "sobol", 10_000, 1, (SampledRange("cfg", 1.0, 12.0), SampledRange("steps", 10, 60))
    )
    points = sample_points(spec, sd15.contract.parameters, ("sampling",))
    return {
        "grid 2 ckpt x 5 prompt x 10 cfg x 5 sampler x 20 seeds": (
            sd15,
            plan(
                sd15,
                Axis("checkpoint", CHECKPOINTS),
                Axis("prompt", tuple(f"a lighthouse, style {i}" for i in range(5))),
                Axis("cfg", tuple(float(c) for c in range(1, 11))),
                Axis("sampler", ("euler", "heun", "dpmpp_2m", "ddim", "lms")),
                seeds=20,
            ),
        ),
        "10,000 seeds": (sd15, plan(sd15, seeds=10_000)),
        "zip, 10,000 distinct cfg": (
            sd15,
            plan(sd15, Axis("cfg", tuple(i / 1000 for i in range(10_000))), mode="zip"),
        ),
        "10,000 Sobol points (cfg, steps)": (sd15, plan(sd15, samples=points)),
    }


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    action()  # warm up
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return sorted(timings)


def report(label: str, ms: list[float]) -> None:
    print(f"{label:<58} min {ms[0]:6.2f} ms, median {statistics.median(ms):6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    registry = load_registry(ROOT / "workflows", ROOT / "params")
    info = object_info(registry)
    for label, (flow, sweep) in sweeps(registry).items():
        assert count_runs(sweep) == 10_000, label
        problems = preflight_sweep(flow.graph, flow.contract, sweep, info)
        assert problems == [], problems
        check = partial(preflight_sweep, flow.graph, flow.contract, sweep, info)
        report(f"preflight {label}", timed(check, args.repeat))
        runs = [(run.index, run.assignment) for run in expand_sweep(sweep)]
        order = partial(dispatch_order, runs, expensive_params(flow.contract, flow.graph))
        report(f"dispatch_order {label}", timed(order, args.repeat))


if __name__ == "__main__":
    main()
